import { MqError } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { AckBatcher, type AckEntry, type AckEntryResult } from './ack-batcher.ts';
import { classify } from './classify.ts';
import { entryResults, receiversFor } from './subscription.ts';

const entry = (id: string): AckEntry => ({ messageId: id, receiptHandle: `handle-${id}` });

describe('AckBatcher', () => {
  it('sends the acks of one turn as one request per target, in order', async () => {
    const calls: Array<[string, string[]]> = [];
    const batcher = new AckBatcher<string>(async (target, entries) => {
      calls.push([target, entries.map((e) => e.messageId)]);
      return entries.map(() => undefined);
    }, 64);
    await Promise.all([batcher.ack('a', 'A', entry('1')), batcher.ack('b', 'B', entry('2')), batcher.ack('a', 'A', entry('3'))]);
    expect(calls).toEqual([
      ['A', ['1', '3']],
      ['B', ['2']],
    ]);
  });

  it('sends a full request at once and never more entries than the limit', async () => {
    const sizes: number[] = [];
    const batcher = new AckBatcher<string>(async (_t, entries) => {
      sizes.push(entries.length);
      return entries.map(() => undefined);
    }, 2);
    const first = batcher.ack('a', 'A', entry('1'));
    batcher.ack('a', 'A', entry('2')).catch(() => {});
    expect(sizes).toEqual([2]); // dispatched synchronously, before the turn ends
    await first;
    await batcher.ack('a', 'A', entry('3'));
    expect(sizes).toEqual([2, 1]);
  });

  it("settles each ack with its own entry's result", async () => {
    const refused = Object.assign(new Error('receipt handle is expired'), { code: 40013 });
    const batcher = new AckBatcher<string>(async (_t, entries) => entries.map((e): AckEntryResult => (e.messageId === '2' ? refused : undefined)), 64);
    const results = await Promise.allSettled([batcher.ack('a', 'A', entry('1')), batcher.ack('a', 'A', entry('2')), batcher.ack('a', 'A', entry('3'))]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const reason = (results[1] as PromiseRejectedResult).reason;
    expect(reason).toBe(refused);
    expect(MqError.is(classify(reason), 'REJECTED')).toBe(true);
  });

  it('rejects every ack of a failed request, and of a request answered with the wrong number of results', async () => {
    const down = Object.assign(new Error('14 UNAVAILABLE: Connection dropped'), { code: 14 });
    const failing = new AckBatcher<string>(async () => {
      throw down;
    }, 64);
    const failed = await Promise.allSettled([failing.ack('a', 'A', entry('1')), failing.ack('a', 'A', entry('2'))]);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(MqError.is(classify((failed[0] as PromiseRejectedResult).reason), 'CONNECTION')).toBe(true);

    const short = new AckBatcher<string>(async () => [undefined], 64);
    const partial = await Promise.allSettled([short.ack('a', 'A', entry('1')), short.ack('a', 'A', entry('2'))]);
    expect(partial.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });

  it('rejects when the sender throws synchronously', async () => {
    const batcher = new AckBatcher<string>(() => {
      throw new Error('not running');
    }, 64);
    await expect(batcher.ack('a', 'A', entry('1'))).rejects.toThrow(/not running/);
  });

  it('flush() sends what is queued without waiting for the turn to end', async () => {
    let sent = 0;
    const batcher = new AckBatcher<string>(async (_t, entries) => {
      sent += entries.length;
      return entries.map(() => undefined);
    }, 64);
    const acked = batcher.ack('a', 'A', entry('1'));
    batcher.flush();
    expect(sent).toBe(1);
    await acked;
  });
});

describe('entryResults', () => {
  const ok = { code: 20000, message: 'OK' };
  const expired = { code: 40013, message: 'receipt handle is expired' };

  it('reads each entry by position (as the proxy answers) and by message id otherwise', () => {
    const entries = [entry('1'), entry('2'), entry('3')];
    const inOrder = entryResults(entries, [{ messageId: '1', status: ok }, { messageId: '2', status: expired }, { messageId: '3', status: ok }], { code: 30000, message: 'MULTIPLE_RESULTS' });
    expect(inOrder.map((r) => r === undefined)).toEqual([true, false, true]);
    expect((inOrder[1] as Error & { code: number }).code).toBe(40013);
    const shuffled = entryResults(entries, [{ messageId: '3', status: ok }, { messageId: '1', status: expired }, { messageId: '2', status: ok }], { code: 30000, message: 'MULTIPLE_RESULTS' });
    expect(shuffled.map((r) => r === undefined)).toEqual([false, true, true]);
  });

  it('gives an entry the response leaves out the status of the whole request', () => {
    expect(entryResults([entry('1')], [], ok)).toEqual([undefined]);
    const [missing] = entryResults([entry('1')], [], { code: 30000, message: 'MULTIPLE_RESULTS' });
    expect(missing).toBeInstanceOf(Error);
  });
});

describe('receiversFor', () => {
  it('opens one receive call per batch that fits the in-flight budget, at most 4, one when ordered', () => {
    expect(receiversFor({ ordered: false, maxInFlight: 16 }, 32)).toBe(1);
    expect(receiversFor({ ordered: false, maxInFlight: 64 }, 32)).toBe(2);
    expect(receiversFor({ ordered: false, maxInFlight: 256 }, 32)).toBe(4);
    expect(receiversFor({ ordered: false, maxInFlight: 256 }, 32, 8)).toBe(8);
    expect(receiversFor({ ordered: true, maxInFlight: 256 }, 32, 8)).toBe(1);
  });
});
