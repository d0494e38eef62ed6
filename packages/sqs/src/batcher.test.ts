import { MqError } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher.ts';

describe('Batcher', () => {
  it('coalesces entries of one tick into batches of 10 per queue, with per-entry outcomes', async () => {
    const calls: Array<[string, number[]]> = [];
    const batcher = new Batcher<number>(
      async (queue, entries) => {
        calls.push([queue, [...entries]]);
        return entries.map((n) => (n === 7 ? new MqError('REJECTED', 'seven') : undefined));
      },
      (err) => new MqError('INTERNAL', String(err)),
    );
    const results = await Promise.allSettled([
      ...Array.from({ length: 23 }, (_, n) => batcher.add('q1', n)),
      batcher.add('q2', 100),
    ]);
    expect(calls.filter(([q]) => q === 'q1').map(([, e]) => e.length)).toEqual([10, 10, 3]);
    expect(calls.filter(([q]) => q === 'q2')).toEqual([['q2', [100]]]);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect((results[7] as PromiseRejectedResult).reason.code).toBe('REJECTED');
  });

  it('fails every entry of a call that throws', async () => {
    const batcher = new Batcher<number>(
      async () => {
        throw new Error('down');
      },
      () => new MqError('CONNECTION', 'down'),
    );
    const results = await Promise.allSettled([batcher.add('q', 1), batcher.add('q', 2)]);
    expect(results.map((r) => r.status === 'rejected' && (r.reason as MqError).code)).toEqual(['CONNECTION', 'CONNECTION']);
    await batcher.drain();
  });
});
