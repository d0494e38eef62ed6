import { memory } from '@mqkit/testing';
import { uniqueName } from '@mqkit/testing/conformance';
import { describe, expect, it } from 'vitest';
import { connect } from './connect.ts';
import type { Delivery, Settlement } from './delivery.ts';
import { MqError } from './errors.ts';
import { idempotent, MemoryDedupStore, type BeginResult } from './idempotency.ts';
import type { Logger } from './logger.ts';

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The token of an acquired lease (fails the test when the key was not acquired). */
function tokenOf(result: BeginResult): string {
  expect(result.state).toBe('acquired');
  return (result as { token: string }).token;
}

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const noop = (): void => {};
  return { warnings, debug: noop, info: noop, error: (_o, msg) => void warnings.push(`error:${msg}`), warn: (_o, msg) => void warnings.push(msg ?? '') };
}

describe('MemoryDedupStore', () => {
  it('leases, completes, and reports duplicates', async () => {
    let now = 1_000;
    const store = new MemoryDedupStore({ now: () => now });
    const token = tokenOf(await store.begin('g:1', 100));
    expect(await store.begin('g:1', 100)).toEqual({ state: 'busy' });
    expect(await store.complete('g:1', token, 10_000)).toBe(true);
    expect(await store.begin('g:1', 100)).toEqual({ state: 'duplicate' });
    now += 10_001;
    expect((await store.begin('g:1', 100)).state).toBe('acquired');
  });

  it('lets a lease lapse when its consumer died, so a redelivery runs again', async () => {
    let now = 0;
    const store = new MemoryDedupStore({ now: () => now });
    tokenOf(await store.begin('g:2', 500));
    now = 499;
    expect((await store.begin('g:2', 500)).state).toBe('busy');
    now = 501;
    expect((await store.begin('g:2', 500)).state).toBe('acquired');
  });

  it('release drops a lease but never a done mark', async () => {
    const store = new MemoryDedupStore();
    const first = tokenOf(await store.begin('g:3', 1_000));
    expect(await store.release('g:3', first)).toBe(true);
    const second = tokenOf(await store.begin('g:3', 1_000));
    await store.complete('g:3', second, 1_000);
    expect(await store.release('g:3', second)).toBe(false);
    expect((await store.begin('g:3', 1_000)).state).toBe('duplicate');
  });

  it('a stale holder cannot release, renew or complete over the lease a newer holder took', async () => {
    let now = 0;
    const store = new MemoryDedupStore({ now: () => now });
    const stale = tokenOf(await store.begin('g:4', 100));
    now = 150; // the stale holder's lease lapsed; a redelivery takes the key
    const fresh = tokenOf(await store.begin('g:4', 100));
    expect(await store.release('g:4', stale)).toBe(false);
    expect((await store.begin('g:4', 100)).state).toBe('busy');
    expect(await store.renew('g:4', stale, 100)).toBe(false);
    expect(await store.complete('g:4', stale, 10_000)).toBe(false);
    expect((await store.begin('g:4', 100)).state).toBe('busy'); // still the fresh lease, not a done mark
    now = 240;
    expect(await store.renew('g:4', fresh, 100)).toBe(true);
    now = 300; // past the original lease, within the renewed one
    expect((await store.begin('g:4', 100)).state).toBe('busy');
    expect(await store.complete('g:4', fresh, 10_000)).toBe(true);
    expect((await store.begin('g:4', 100)).state).toBe('duplicate');
  });

  it('complete by a holder whose lease lapsed untaken still writes the done mark', async () => {
    let now = 0;
    const store = new MemoryDedupStore({ now: () => now });
    const token = tokenOf(await store.begin('g:5', 100));
    now = 500;
    expect(await store.complete('g:5', token, 10_000)).toBe(true);
    expect((await store.begin('g:5', 100)).state).toBe('duplicate');
  });
});

describe('idempotent() middleware', () => {
  function fakeDelivery(id: string, unsupportedDelay = false) {
    const calls: string[] = [];
    let settlement: Settlement | undefined;
    const abort = new AbortController();
    const delivery = {
      id,
      group: 'g',
      signal: abort.signal,
      get settled() {
        return settlement !== undefined;
      },
      get settlement() {
        return settlement;
      },
      ack: async () => {
        settlement = 'ack';
        calls.push('ack');
      },
      nack: async (o?: { delayMs?: number }) => {
        if (unsupportedDelay && (o?.delayMs ?? 0) > 0) throw new MqError('UNSUPPORTED', 'no delay');
        settlement = 'nack';
        calls.push(`nack:${o?.delayMs ?? 0}`);
      },
      deadLetter: async (reason: string) => {
        settlement = 'dead-letter';
        calls.push(`dead-letter:${reason}`);
      },
    } as unknown as Delivery<unknown>;
    return { delivery, calls, abort };
  }

  it('runs the handler once, then acks duplicates without running it', async () => {
    const store = new MemoryDedupStore();
    const mw = idempotent(store);
    let runs = 0;
    const first = fakeDelivery('m1');
    await mw(first.delivery, async () => void (runs += 1));
    const dup = fakeDelivery('m1');
    await mw(dup.delivery, async () => void (runs += 1));
    expect(runs).toBe(1);
    expect(dup.calls).toEqual(['ack']);
  });

  it('hands a message back while another consumer holds its lease (busyWaitMs 0: at once)', async () => {
    const store = new MemoryDedupStore();
    await store.begin('g:m2', 60_000);
    const busy = fakeDelivery('m2');
    await idempotent(store, { busyRetryDelayMs: 250, busyWaitMs: 0 })(busy.delivery, async () => {});
    expect(busy.calls).toEqual(['nack:250']);
    const noDelay = fakeDelivery('m2', true);
    await idempotent(store, { busyWaitMs: 0 })(noDelay.delivery, async () => {});
    expect(noDelay.calls).toEqual(['nack:0']);
  });

  it('a copy that finds the lease held waits for the holder: acked if it completed, run if it released, abandoned on abort, handed back after busyWaitMs', async () => {
    const store = new MemoryDedupStore();
    const mw = idempotent(store, { busyWaitMs: 2_000, busyRetryDelayMs: 50 });
    // The holder completes while the copy waits: a duplicate.
    const held = await store.begin('g:w1', 60_000);
    const copy = fakeDelivery('w1');
    let ran = 0;
    const waiting = mw(copy.delivery, async () => void (ran += 1));
    await pause(150);
    expect(copy.calls).toEqual([]);
    await store.complete('g:w1', (held as { token: string }).token, 60_000);
    await waiting;
    expect([ran, copy.calls]).toEqual([0, ['ack']]);
    // The holder hands the message back: the copy takes the lease and runs.
    const held2 = await store.begin('g:w2', 60_000);
    const copy2 = fakeDelivery('w2');
    const waiting2 = mw(copy2.delivery, async () => void (ran += 1));
    await pause(150);
    await store.release('g:w2', (held2 as { token: string }).token);
    await waiting2;
    expect(ran).toBe(1);
    expect(copy2.calls).toEqual([]); // settled by core's ack after next() returns, not here
    // The subscription gives up on the copy (close deadline): it stops waiting, abandoned.
    await store.begin('g:w3', 60_000);
    const copy3 = fakeDelivery('w3');
    const waiting3 = mw(copy3.delivery, async () => {});
    await pause(50);
    copy3.abort.abort(new MqError('CLOSED', 'closing'));
    await expect(waiting3).rejects.toMatchObject({ code: 'CLOSED' });
    expect(copy3.calls).toEqual([]);
    // Still held after busyWaitMs: handed back with busyRetryDelayMs.
    const copy4 = fakeDelivery('w3');
    const started = Date.now();
    await idempotent(store, { busyWaitMs: 300, busyRetryDelayMs: 50 })(copy4.delivery, async () => {});
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(copy4.calls).toEqual(['nack:50']);
  });

  it('releases the lease when the handler throws, so the retry runs', async () => {
    const store = new MemoryDedupStore();
    const mw = idempotent(store);
    await expect(mw(fakeDelivery('m3').delivery, async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    let ran = false;
    await mw(fakeDelivery('m3').delivery, async () => void (ran = true));
    expect(ran).toBe(true);
  });

  it('a handler that nacks ("not ready yet") is not marked done: the redelivery runs it again', async () => {
    const store = new MemoryDedupStore();
    const mw = idempotent(store);
    const first = fakeDelivery('m4');
    await mw(first.delivery, async () => first.delivery.nack());
    expect(first.calls).toEqual(['nack:0']);
    let ran = false;
    const again = fakeDelivery('m4');
    await mw(again.delivery, async () => void (ran = true));
    expect(ran).toBe(true);
    expect((await store.begin('g:m4', 1_000)).state).toBe('duplicate');
  });

  it('a handler that dead-letters is not marked done: the effect did not happen (a replay from the DLQ runs it)', async () => {
    const store = new MemoryDedupStore();
    const mw = idempotent(store);
    const first = fakeDelivery('m5');
    await mw(first.delivery, async () => first.delivery.deadLetter('invalid'));
    expect((await store.begin('g:m5', 1_000)).state).toBe('acquired');
  });

  it('renews the lease while a slow handler runs: a concurrent redelivery past leaseMs sees busy', async () => {
    const store = new MemoryDedupStore();
    const mw = idempotent(store, { leaseMs: 300 });
    let release!: () => void;
    const slow = mw(fakeDelivery('m6').delivery, () => new Promise<void>((r) => (release = r)));
    await pause(1_000); // more than three leases
    expect((await store.begin('g:m6', 300)).state).toBe('busy');
    const concurrent = fakeDelivery('m6');
    let ranTwice = false;
    await mw(concurrent.delivery, async () => void (ranTwice = true));
    expect(ranTwice).toBe(false);
    expect(concurrent.calls).toEqual(['nack:1000']);
    release();
    await slow;
    expect((await store.begin('g:m6', 300)).state).toBe('duplicate');
  });

  it('stops renewing once the handler is done', async () => {
    let renewals = 0;
    const store = new MemoryDedupStore();
    const renew = store.renew.bind(store);
    store.renew = async (...args) => {
      renewals += 1;
      return renew(...args);
    };
    const mw = idempotent(store, { leaseMs: 60 });
    await mw(fakeDelivery('m7').delivery, () => pause(200));
    const seen = renewals;
    expect(seen).toBeGreaterThanOrEqual(2);
    await pause(150);
    expect(renewals).toBe(seen);
  });

  it('warns once when a renewal finds the lease lost, and stops renewing', async () => {
    let renewals = 0;
    const store = new MemoryDedupStore();
    store.renew = async () => {
      renewals += 1;
      return false;
    };
    const logger = recordingLogger();
    await idempotent(store, { leaseMs: 60, logger })(fakeDelivery('m9').delivery, () => pause(200));
    expect(renewals).toBe(1);
    expect(logger.warnings.filter((w) => /lapsed while the handler runs/.test(w))).toHaveLength(1);
  });

  it('reports a holder whose lease was taken over, and does not overwrite the new holder', async () => {
    let now = 0;
    const store = new MemoryDedupStore({ now: () => now });
    const logger = recordingLogger();
    const mw = idempotent(store, { leaseMs: 100, logger });
    // The store's clock jumps past the lease (a stalled process), and a redelivery takes the key.
    let taken!: BeginResult;
    await mw(fakeDelivery('m8').delivery, async () => {
      now = 1_000;
      taken = await store.begin('g:m8', 10_000);
    });
    expect(taken.state).toBe('acquired');
    expect(logger.warnings.join('\n')).toMatch(/lease .*taken over/);
    expect((await store.begin('g:m8', 100)).state).toBe('busy'); // the new holder's lease is intact
  });

  it('validates its options (CONFIG naming the field; unknown keys rejected)', () => {
    const store = new MemoryDedupStore();
    const bad = [
      [{ ttlMs: '7d' }, 'idempotent.ttlMs'],
      [{ leaseMs: 0 }, 'idempotent.leaseMs'],
      [{ leaseMs: Number.NaN }, 'idempotent.leaseMs'],
      [{ busyRetryDelayMs: -1 }, 'idempotent.busyRetryDelayMs'],
      [{ busyWaitMs: -5 }, 'idempotent.busyWaitMs'],
      [{ keyOf: 'id' }, 'idempotent.keyOf'],
      [{ leaseMS: 5_000 }, 'leaseMS'],
    ] as const;
    for (const [options, field] of bad) {
      let err: unknown;
      try {
        idempotent(store, options as never);
      } catch (e) {
        err = e;
      }
      expect(MqError.is(err, 'CONFIG'), JSON.stringify(options)).toBe(true);
      expect((err as Error).message).toContain(field);
    }
    expect(() => idempotent(store, { leaseMs: 5_000, ttlMs: 60_000, busyRetryDelayMs: 0, keyOf: (d) => d.id })).not.toThrow();
  });
});

describe('idempotent() on the memory broker', () => {
  // A copy that found the lease held used to be handed back at once, and every delivery counts:
  // with maxAttempts 1 (or a handler slower than maxAttempts x busyRetryDelayMs) the concurrent
  // duplicate was dead-lettered although the other copy succeeded.
  it('a duplicate delivered while the first copy is still being handled waits for it: one effect, nothing dead-lettered, even with maxAttempts 1', async () => {
    const mq = await connect(`memory://${uniqueName('idem')}`, { adapters: [memory()] });
    const topic = uniqueName('t');
    const effects: string[] = [];
    const dead: string[] = [];
    await mq.subscribe(`${topic}-dlq`, { group: 'dlq', handler: (m) => void dead.push(m.id) });
    let running = 0;
    let overlapped = false;
    const sub = await mq.subscribe<{ n: number }>(topic, {
      group: 'g',
      concurrency: 2,
      retry: { maxAttempts: 1 },
      middleware: [
        async (_m, next) => {
          running += 1;
          if (running > 1) overlapped = true;
          try {
            await next();
          } finally {
            running -= 1;
          }
        },
        idempotent(new MemoryDedupStore()),
      ],
      handler: async (m) => {
        await pause(300);
        effects.push(m.id);
      },
    });
    const id = uniqueName('m');
    await Promise.all([mq.publish(topic, { n: 1 }, { id }), mq.publish(topic, { n: 1 }, { id })]);
    for (let i = 0; i < 100 && effects.length === 0; i += 1) await pause(20);
    await pause(500);
    expect(overlapped).toBe(true); // the scenario happened: both copies were in flight at once
    expect(effects).toEqual([id]);
    expect(dead).toEqual([]);
    await sub.close();
    await mq.close();
  });

  it('a handler that nacks on its first delivery runs the effect on the redelivery, exactly once', async () => {
    const mq = await connect(`memory://${uniqueName('idem')}`, { adapters: [memory()] });
    const topic = uniqueName('t');
    const effects: string[] = [];
    const attempts: number[] = [];
    const sub = await mq.subscribe<{ n: number }>(topic, {
      group: 'g',
      middleware: [idempotent(new MemoryDedupStore(), { busyRetryDelayMs: 10 })],
      handler: async (m) => {
        attempts.push(m.attempt);
        if (m.attempt === 1) return m.nack(); // not ready yet
        effects.push(m.id);
      },
    });
    const id = uniqueName('m');
    await mq.publish(topic, { n: 1 }, { id });
    for (let i = 0; i < 100 && effects.length === 0; i += 1) await pause(20);
    await mq.publish(topic, { n: 1 }, { id }); // a later duplicate copy is skipped
    await pause(200);
    expect(effects).toEqual([id]);
    await sub.close();
    await mq.close();
  });
});
