import { memory, memoryBroker, wrapAdapter } from '@mqkit/testing';
import { uniqueName } from '@mqkit/testing/conformance';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connect, type ConnectOptions } from './connect.ts';
import type { Envelope } from './message.ts';
import type { SendOutcome } from './driver/driver.ts';
import { MqError } from './errors.ts';

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Settles with the promise's rejection, or with `'pending'` if it is still pending after `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<unknown> {
  return Promise.race([promise.then((v) => ({ resolved: v }), (e: unknown) => e), pause(ms).then(() => 'pending')]);
}

function payloadOf(e: Envelope): number {
  return (JSON.parse(Buffer.from(e.body).toString()) as { n: number }).n;
}

/**
 * A memory broker whose driver calls hang (as with a SIGSTOPped broker: no answer, no socket
 * error) while `hung` is true; `resume()` lets the held calls through to the real broker.
 */
function stallable(extra: { maxBatchSize?: number } = {}) {
  const state = {
    hung: true,
    /** Every message handed to the driver, in call order. */
    handed: [] as Envelope[],
    calls: 0,
    held: [] as Array<() => void>,
  };
  const adapter = wrapAdapter(memory(), (driver) => ({
    capabilities: { ...driver.capabilities, ...(extra.maxBatchSize ? { maxBatchSize: extra.maxBatchSize } : {}) },
    send: (envelopes) => {
      state.calls += 1;
      state.handed.push(...envelopes);
      if (!state.hung) return driver.send(envelopes);
      return new Promise<SendOutcome[]>((resolve) => state.held.push(() => resolve(driver.send(envelopes))));
    },
  }));
  return {
    adapter,
    state,
    resume() {
      state.hung = false;
      for (const go of state.held.splice(0)) go();
    },
  };
}

const clients: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

async function open(adapter: ReturnType<typeof stallable>['adapter'], publish: ConnectOptions['publish']) {
  const name = uniqueName('deadline');
  const client = await connect(`memory://${name}`, { adapters: [adapter], publish });
  clients.push(client);
  return { client, name };
}

describe('publish deadline (publish.timeoutMs is a hard deadline)', () => {
  it('rejects with a retryable TIMEOUT at the deadline while the driver call never answers', async () => {
    const stall = stallable();
    const { client } = await open(stall.adapter, { timeoutMs: 300 });
    const started = Date.now();
    const err = await within(client.publish('t', { n: 1 }), 3_000);
    const elapsed = Date.now() - started;
    expect(MqError.is(err, 'TIMEOUT')).toBe(true);
    expect((err as MqError).retryable).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(300 + 250);
    expect(stall.state.handed).toHaveLength(1);
    stall.resume();
  });

  it('gives each message of a hung publishBatch its own TIMEOUT outcome', async () => {
    const stall = stallable();
    const { client } = await open(stall.adapter, { timeoutMs: 300 });
    const outcomes = await within(client.publishBatch([1, 2, 3].map((n) => ({ topic: 't', payload: { n } }))), 3_000);
    expect(outcomes).not.toBe('pending');
    const list = (outcomes as { resolved: Array<{ ok: boolean; error?: MqError }> }).resolved;
    expect(list).toHaveLength(3);
    for (const o of list) {
      expect(o.ok).toBe(false);
      expect(MqError.is(o.error, 'TIMEOUT')).toBe(true);
    }
    stall.resume();
  });

  it('keeps a key blocked behind its timed-out driver call until that call settles (no overtaking)', async () => {
    const stall = stallable();
    const { client, name } = await open(stall.adapter, { timeoutMs: 200 });
    const first = client.publish('t', { n: 1 }, { key: 'k' });
    expect(MqError.is(await within(first, 2_000), 'TIMEOUT')).toBe(true);
    // The first call is still outstanding; the key's next message must not go past it.
    const second = client.publish('t', { n: 2 }, { key: 'k' });
    const other = client.publish('t', { n: 3 }, { key: 'other' });
    await pause(50);
    expect(stall.state.handed.map(payloadOf)).toEqual([1, 3]);
    stall.resume(); // the hung call lands; the second may go now
    await Promise.all([second, other]);
    const ks = memoryBroker(name)
      .published('t')
      .filter((e) => e.key === 'k')
      .map(payloadOf);
    expect(ks).toEqual([1, 2]);
  });

  it('times out a message held behind its busy key, without sending it later', async () => {
    const stall = stallable();
    const { client } = await open(stall.adapter, { timeoutMs: 200 });
    const first = client.publish('t', { n: 1 }, { key: 'k' }).catch((e: unknown) => e);
    await pause(20);
    const second = client.publish('t', { n: 2 }, { key: 'k' });
    expect(MqError.is(await within(second, 2_000), 'TIMEOUT')).toBe(true);
    expect(MqError.is(await first, 'TIMEOUT')).toBe(true);
    stall.resume();
    await pause(50);
    expect(stall.state.handed.map(payloadOf)).toEqual([1]);
  });

  it('frees the key of a message back from a failed send whose deadline passes before it is resent', async () => {
    let calls = 0;
    const flaky = wrapAdapter(memory(), (driver) => ({
      send: (envelopes) => {
        calls += 1;
        if (calls === 1) return Promise.resolve(envelopes.map(() => ({ ok: false as const, error: new MqError('CONNECTION', 'blip') })));
        return driver.send(envelopes);
      },
    }));
    const { client, name } = await open(flaky, { timeoutMs: 300, initialDelayMs: 200, maxDelayMs: 200 });
    const first = client.publish('t', { n: 1 }, { key: 'k' }).catch((e: unknown) => e);
    await pause(20); // the first send failed; its retry waits 100-200 ms
    // The event loop stalls past both the retry and the deadline: the retry is queued again, and
    // in the same turn its deadline passes before it is resent.
    const until = Date.now() + 450;
    while (Date.now() < until) {
      // busy
    }
    // Not on its way when the deadline passed: its caller gets the failure it waited to retry.
    expect(MqError.is(await first, 'CONNECTION')).toBe(true);
    // Its place in the key gate is given up: the key's next message goes.
    await expect(client.publish('t', { n: 2 }, { key: 'k' })).resolves.toMatchObject({ topic: 't' });
    expect(memoryBroker(name).published('t').map(payloadOf)).toEqual([2]);
  });

  it('lets close() return once every publish has its answer, even if the driver never answers', async () => {
    const stall = stallable();
    const { client } = await open(stall.adapter, { timeoutMs: 200 });
    const p = client.publish('t', { n: 1 }).catch((e: unknown) => e);
    const started = Date.now();
    expect(await within(client.close(), 3_000)).toEqual({ resolved: undefined });
    expect(Date.now() - started).toBeLessThan(200 + 500);
    expect(MqError.is(await p, 'TIMEOUT')).toBe(true);
  });

  it('uses a few timers for many publishes, not one per message', async () => {
    const { client } = await open(memory(), { timeoutMs: 5_000 });
    const spy = vi.spyOn(globalThis, 'setTimeout');
    try {
      await Promise.all(Array.from({ length: 2_000 }, (_, n) => client.publish('t', { n })));
      expect(spy.mock.calls.length).toBeLessThan(20);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('bounded pending publishes (publish.maxPending / maxPendingBytes)', () => {
  it('holds publishes beyond maxPending out of the driver; they wait for room, then reject with TIMEOUT', async () => {
    const stall = stallable();
    const { client } = await open(stall.adapter, { timeoutMs: 300, maxPending: 5 });
    const started = Date.now();
    const results = Array.from({ length: 8 }, (_, n) => client.publish('t', { n }).catch((e: unknown) => e));
    await pause(50);
    expect(stall.state.handed).toHaveLength(5);
    const errors = await Promise.all(results);
    expect(Date.now() - started).toBeLessThan(300 + 250);
    for (const e of errors) expect(MqError.is(e, 'TIMEOUT')).toBe(true);
    // The five timed-out messages are still inside the hung driver call: they keep their room, so
    // a hung broker cannot make the driver's buffer grow either.
    const more = client.publish('t', { n: 99 });
    expect(MqError.is(await within(more, 2_000), 'TIMEOUT')).toBe(true);
    expect(stall.state.handed).toHaveLength(5);
    stall.resume();
    await pause(20);
    await expect(client.publish('t', { n: 100 })).resolves.toMatchObject({ topic: 't' });
  });

  it('bounds pending bytes too', async () => {
    const stall = stallable();
    const { client } = await open(stall.adapter, { timeoutMs: 300, maxPendingBytes: 10_000 });
    const big = 'x'.repeat(4_000);
    const results = Array.from({ length: 4 }, (_, n) => client.publish('t', { n, big }).catch((e: unknown) => e));
    await pause(50);
    expect(stall.state.handed).toHaveLength(2);
    for (const e of await Promise.all(results)) expect(MqError.is(e, 'TIMEOUT')).toBe(true);
    stall.resume();
  });

  it('admits a message larger than maxPendingBytes alone rather than never', async () => {
    const stall = stallable();
    stall.state.hung = false;
    const { client } = await open(stall.adapter, { timeoutMs: 1_000, maxPendingBytes: 1_000 });
    await expect(client.publish('t', { big: 'x'.repeat(5_000) })).resolves.toMatchObject({ topic: 't' });
  });

  it('lets waiting publishes go in publish order as room frees, each key in order', async () => {
    const stall = stallable({ maxBatchSize: 3 });
    const { client, name } = await open(stall.adapter, { timeoutMs: 3_000, maxPending: 4 });
    const all = Array.from({ length: 40 }, (_, n) => client.publish('t', { n }, { key: `k${n % 3}` }));
    await pause(30);
    expect(stall.state.handed.length).toBeLessThanOrEqual(4);
    stall.resume();
    await Promise.all(all);
    for (const k of ['k0', 'k1', 'k2']) {
      const got = memoryBroker(name)
        .published('t')
        .filter((e) => e.key === k)
        .map(payloadOf);
      expect(got).toEqual(Array.from({ length: 40 }, (_, n) => n).filter((n) => `k${n % 3}` === k));
    }
  });
});

describe('bounded pending publishes with a broker that answers', () => {
  it('sends a publishBatch larger than maxPending in slices as room frees, every message confirmed', async () => {
    const stall = stallable({ maxBatchSize: 4 });
    stall.state.hung = false;
    let inDriver = 0;
    let peak = 0;
    const slow = wrapAdapter(stall.adapter, (driver) => ({
      send: async (envelopes) => {
        inDriver += envelopes.length;
        peak = Math.max(peak, inDriver);
        await pause(2);
        const out = await driver.send(envelopes);
        inDriver -= envelopes.length;
        return out;
      },
    }));
    const { client, name } = await open(slow, { timeoutMs: 10_000, maxPending: 6 });
    const outcomes = await client.publishBatch(Array.from({ length: 50 }, (_, n) => ({ topic: 't', payload: { n } })));
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(peak).toBeLessThanOrEqual(6);
    expect(memoryBroker(name).published('t').map(payloadOf)).toEqual(Array.from({ length: 50 }, (_, n) => n));
  });
});

describe('publish option validation', () => {
  it('rejects unknown and ill-typed per-message options with INVALID_MESSAGE naming the field', async () => {
    const { client } = await open(memory(), {});
    const unknown = await client.publish('t', { n: 1 }, { delay: 5 } as never).catch((e: unknown) => e);
    expect(MqError.is(unknown, 'INVALID_MESSAGE')).toBe(true);
    expect((unknown as Error).message).toContain('delay');
    const badType = await client.publish('t', { n: 1 }, { delayMs: '5' } as never).catch((e: unknown) => e);
    expect(MqError.is(badType, 'INVALID_MESSAGE')).toBe(true);
    expect((badType as Error).message).toContain('delayMs');
    const nullDelay = await client.publish('t', { n: 1 }, { delayMs: null } as never).catch((e: unknown) => e);
    expect(MqError.is(nullDelay, 'INVALID_MESSAGE')).toBe(true);
    expect((nullDelay as Error).message).toContain('delayMs');
    const badCodec = await client.publish('t', { n: 1 }, { codec: 'json' } as never).catch((e: unknown) => e);
    expect(MqError.is(badCodec, 'INVALID_MESSAGE')).toBe(true);
    expect((badCodec as Error).message).toContain('codec');
    const [typo, good] = await client.publishBatch([
      { topic: 't', payload: 1, kee: 'k' } as never,
      { topic: 't', payload: 2, key: 'k' },
    ]);
    expect(typo!.ok).toBe(false);
    expect(!typo!.ok && MqError.is(typo!.error, 'INVALID_MESSAGE') && typo!.error.message.includes('kee')).toBe(true);
    expect(good!.ok).toBe(true);
  });

  it('rejects bad connect publish options with CONFIG naming the field', async () => {
    for (const [publish, field] of [
      [{ timeout: 1_000 }, 'timeout'],
      [{ maxPending: 0 }, 'maxPending'],
      [{ maxPendingBytes: Number.NaN }, 'maxPendingBytes'],
      [{ timeoutMs: '3s' }, 'timeoutMs'],
    ] as const) {
      const err = await connect('memory://x', { adapters: [memory()], publish: publish as never }).catch((e: unknown) => e);
      expect(MqError.is(err, 'CONFIG')).toBe(true);
      expect((err as Error).message).toContain(field);
    }
  });
});
