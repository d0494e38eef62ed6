import { describe, expect, it } from 'vitest';
import type { SettleResults } from './driver/driver.ts';
import { MqError } from './errors.ts';
import { SettleBatcher } from './settle-batcher.ts';

describe('SettleBatcher', () => {
  it('gathers one turn of adds per key into one call and settles each caller with its own outcome', async () => {
    const calls: Array<[string, string[]]> = [];
    const batcher = new SettleBatcher<string, string>(async (key, items): Promise<SettleResults> => {
      calls.push([key, [...items]]);
      return items.map((item) => (item === 'bad' ? new MqError('NOT_FOUND', 'receipt expired') : undefined));
    }, 10);
    const outcomes = await Promise.allSettled([batcher.add('ack', 'a'), batcher.add('ack', 'bad'), batcher.add('nack', 'c')]);
    expect(calls).toEqual([
      ['ack', ['a', 'bad']],
      ['nack', ['c']],
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(MqError.is((outcomes[1] as PromiseRejectedResult).reason, 'NOT_FOUND')).toBe(true);
  });

  it('runs each item hook with its outcome before the caller hears of it', async () => {
    const seen: string[] = [];
    const batcher = new SettleBatcher<string, string>(async () => [undefined, new MqError('CONNECTION', 'down')], 10);
    const hook = (item: string, error: MqError | undefined): void => void seen.push(`${item}:${error ? error.code : 'ok'}`);
    const first = batcher.add('ack', 'a', hook).then(() => seen.push('a resolved'));
    const second = batcher.add('ack', 'b', hook).catch(() => seen.push('b rejected'));
    await Promise.all([first, second]);
    expect(seen).toEqual(['a:ok', 'b:CONNECTION', 'a resolved', 'b rejected']);
  });

  it('a hook that throws rejects its own item only; the rest of the batch settles', async () => {
    const batcher = new SettleBatcher<string, string>(async () => undefined, 10);
    const outcomes = await Promise.allSettled([
      batcher.add('ack', 'a', () => {
        throw new Error('bookkeeping bug');
      }),
      batcher.add('ack', 'b', () => {}),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'fulfilled']);
  });

  it('a full batch goes out at once; a rejected call fails every item of it; a wrong result count is INTERNAL', async () => {
    let calls = 0;
    const failing = new SettleBatcher<string, number>(async () => {
      calls += 1;
      throw new MqError('TIMEOUT', 'no answer');
    }, 2);
    const both = [failing.add('ack', 1), failing.add('ack', 2)];
    expect(calls).toBe(1); // sent when the batch filled, not on the next turn
    for (const outcome of await Promise.allSettled(both)) expect(outcome.status).toBe('rejected');
    const short = new SettleBatcher<string, number>(async () => [undefined], 10);
    const results = await Promise.allSettled([short.add('ack', 1), short.add('ack', 2)]);
    for (const r of results) expect(MqError.is((r as PromiseRejectedResult).reason, 'INTERNAL')).toBe(true);
  });

  it('drain() sends what is queued and waits for every call', async () => {
    let answered = 0;
    const batcher = new SettleBatcher<string, number>(async () => {
      await new Promise((r) => setTimeout(r, 20));
      answered += 1;
    }, 10);
    void batcher.add('ack', 1);
    await batcher.drain();
    expect(answered).toBe(1);
  });
});
