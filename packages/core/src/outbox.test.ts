import { memory, memoryBroker, MemoryOutboxStore, type MemoryTx } from '@mqkit/testing';
import { uniqueName } from '@mqkit/testing/conformance';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { connect } from './connect.ts';
import { MqError } from './errors.ts';
import { TestMetricReader } from './metric-reader.test-util.ts';
import { silentLogger } from './logger.ts';
import { Outbox, OutboxRelay, type OutboxStore } from './outbox.ts';

async function setup() {
  const name = uniqueName('outbox');
  const client = await connect(`memory://${name}`, { adapters: [memory()], publish: { timeoutMs: 50, initialDelayMs: 5, maxDelayMs: 10 } });
  const store = new MemoryOutboxStore();
  return { client, store, broker: memoryBroker(name), outbox: new Outbox(store, client) };
}

function bodies(envelopes: ReadonlyArray<{ body: Uint8Array }>): Array<Record<string, unknown>> {
  return envelopes.map((e) => JSON.parse(Buffer.from(e.body).toString()) as Record<string, unknown>);
}

function expectConfig(make: () => unknown, fails = true, field?: string): void {
  let error: unknown;
  try {
    make();
  } catch (err) {
    error = err;
  }
  if (!fails) {
    expect(error).toBeUndefined();
    return;
  }
  expect(MqError.is(error, 'CONFIG'), String(error)).toBe(true);
  if (field) expect((error as Error).message).toContain(field);
}

async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('transactional outbox', () => {
  it('publishes what a committed transaction enqueued, never what a rolled-back one did', async () => {
    const { client, store, broker, outbox } = await setup();
    const committedId = await store.transaction((tx) => outbox.enqueue(tx, 'orders', { order: 1 }));
    await store
      .transaction(async (tx) => {
        await outbox.enqueue(tx, 'orders', { order: 2 });
        throw new Error('business write failed');
      })
      .catch(() => {});
    const relay = new OutboxRelay(store, client, { pollIntervalMs: 20 });
    relay.start();
    await until(() => broker.published('orders').length === 1);
    await relay.stop();
    expect(broker.published('orders').map((e) => e.id)).toEqual([committedId]);
    expect(store.pending).toBe(0);
    await client.close();
  });

  it('retries a failed publish with backoff until it is published', async () => {
    const { client, store, broker, outbox } = await setup();
    broker.injectSendFailures(new MqError('REJECTED', 'not now'));
    await store.transaction(async (tx) => {
      for (let seq = 0; seq < 3; seq += 1) await outbox.enqueue(tx, 'orders', { seq }, { key: `customer-${seq}` });
    });
    const relay = new OutboxRelay(store, client, { pollIntervalMs: 10, backoff: { initialDelayMs: 10, maxDelayMs: 20 } });
    relay.start();
    await until(() => store.pending === 0);
    await relay.stop();
    expect(bodies(broker.published('orders')).map((b) => b.seq).sort()).toEqual([0, 1, 2]);
    await client.close();
  });

  it('a failing row holds back the later rows of its key until it is published (retries go out alone)', async () => {
    const { client, store, broker, outbox } = await setup();
    const relay = new OutboxRelay(store, client, { backoff: { initialDelayMs: 40, maxDelayMs: 40, jitter: false } });
    await store.transaction((tx) => outbox.enqueue(tx, 'orders', { seq: 0 }, { key: 'k' }));
    broker.injectSendFailures(new MqError('REJECTED', 'not now'));
    expect(await relay.relayOnce()).toBe(0);
    await store.transaction(async (tx) => {
      await outbox.enqueue(tx, 'orders', { seq: 1 }, { key: 'k' });
      await outbox.enqueue(tx, 'orders', { seq: 2 }, { key: 'k' });
      await outbox.enqueue(tx, 'orders', { other: true }, { key: 'other' });
    });
    // seq 0 waits for its retry: its key waits too, other keys go.
    expect(await relay.relayOnce()).toBe(1);
    await new Promise((r) => setTimeout(r, 60));
    // The retry fails again: nothing of its key may have been published with it.
    broker.injectSendFailures(new MqError('REJECTED', 'still not'));
    expect(await relay.relayOnce()).toBe(0);
    expect(bodies(broker.published('orders'))).toEqual([{ other: true }]);
    await new Promise((r) => setTimeout(r, 60));
    expect(await relay.relayOnce()).toBe(1); // the retry, alone for its key
    expect(await relay.relayOnce()).toBe(2);
    expect(bodies(broker.published('orders')).filter((b) => b.seq !== undefined).map((b) => b.seq)).toEqual([0, 1, 2]);
    await client.close();
  });

  it('logs a later row of a key accepted in the same send as an earlier one refused (the remaining reorder), not when that one went dead', async () => {
    const { client, store, broker, outbox } = await setup();
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (_: object, msg: string) => void warnings.push(msg) };
    await store.transaction(async (tx) => {
      await outbox.enqueue(tx, 'orders', { seq: 0 }, { key: 'k' });
      await outbox.enqueue(tx, 'orders', { seq: 1 }, { key: 'k' });
    });
    broker.injectSendFailures(new MqError('REJECTED', 'this one only'));
    expect(await new OutboxRelay(store, client, { logger }).relayOnce()).toBe(1);
    expect(warnings.filter((w) => /ahead of an earlier record of its key/.test(w))).toHaveLength(1);
    warnings.length = 0;
    const fresh = await setup();
    await fresh.store.transaction(async (tx) => {
      await fresh.outbox.enqueue(tx, 'orders', { seq: 0 }, { key: 'k' });
      await fresh.outbox.enqueue(tx, 'orders', { seq: 1 }, { key: 'k' });
    });
    fresh.broker.injectSendFailures(new MqError('TOO_LARGE', 'dead at once'));
    expect(await new OutboxRelay(fresh.store, fresh.client, { logger, maxAttempts: 1 }).relayOnce()).toBe(1);
    expect(warnings.filter((w) => /ahead of an earlier record of its key/.test(w))).toEqual([]);
    await fresh.client.close();
    await client.close();
  });

  it('a TOO_LARGE row is dead after maxAttempts, does not block its key, and is replayable', async () => {
    const { client, store, broker, outbox } = await setup();
    const relay = new OutboxRelay(store, client, { maxAttempts: 3, backoff: { initialDelayMs: 1, maxDelayMs: 1 } });
    const id = await store.transaction((tx) => outbox.enqueue(tx, 'orders', { seq: 0 }, { key: 'k' }));
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      broker.injectSendFailures(new MqError('TOO_LARGE', 'over the broker limit'));
      expect(await relay.relayOnce()).toBe(0);
      await new Promise((r) => setTimeout(r, 5));
    }
    const dead = await outbox.listDead();
    expect(dead.map((d) => ({ id: d.envelope.id, attempts: d.attempts }))).toEqual([{ id, attempts: 3 }]);
    expect(dead[0]!.lastError).toContain('TOO_LARGE');
    expect(dead[0]!.deadAt).toBeInstanceOf(Date);
    expect(await store.stats()).toMatchObject({ pending: 0, dead: 1 });
    // Dead: never retried again, and its key moves on.
    await store.transaction((tx) => outbox.enqueue(tx, 'orders', { seq: 1 }, { key: 'k' }));
    await new Promise((r) => setTimeout(r, 5));
    expect(await relay.relayOnce()).toBe(1);
    expect(bodies(broker.published('orders'))).toEqual([{ seq: 1 }]);
    // Replayed (e.g. after raising the broker's limit): published once more, with a fresh budget.
    expect(await outbox.replayDead([dead[0]!.seq])).toBe(1);
    expect(await outbox.listDead()).toEqual([]);
    expect(await relay.relayOnce()).toBe(1);
    expect(bodies(broker.published('orders'))).toEqual([{ seq: 1 }, { seq: 0 }]);
    await client.close();
  });

  it('environment failures (broker down, auth) never make a row dead; replayDead() and discardDead() take all when given no seqs', async () => {
    const { client, store, broker, outbox } = await setup();
    const relay = new OutboxRelay(store, client, { maxAttempts: 1, backoff: { initialDelayMs: 1, maxDelayMs: 1 } });
    await store.transaction((tx) => outbox.enqueue(tx, 'orders', { n: 1 }));
    for (const code of ['CONNECTION', 'TIMEOUT', 'AUTH', 'CLOSED'] as const) {
      // Enough failures to outlast the client's publish deadline (retryable ones are retried).
      broker.injectSendFailures(...Array.from({ length: 100 }, () => new MqError(code, 'environment')));
      expect(await relay.relayOnce()).toBe(0);
      while (broker.takeSendFailure()) {
        // drop the failures left over
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await outbox.listDead()).toEqual([]);
    broker.injectSendFailures(new MqError('UNROUTABLE', 'no queue'));
    expect(await relay.relayOnce()).toBe(0);
    await store.transaction((tx) => outbox.enqueue(tx, 'orders', { n: 2 }));
    broker.injectSendFailures(new MqError('INVALID_MESSAGE', 'bad'));
    expect(await relay.relayOnce()).toBe(0);
    expect((await outbox.listDead()).map((d) => d.attempts)).toEqual([5, 1]);
    expect((await outbox.listDead({ limit: 1 })).map((d) => bodies([d.envelope])[0])).toEqual([{ n: 1 }]);
    expect(await outbox.replayDead()).toBe(2);
    expect(await relay.relayOnce()).toBe(2);
    await store.transaction((tx) => outbox.enqueue(tx, 'orders', { n: 3 }));
    broker.injectSendFailures(new MqError('NOT_FOUND', 'no topic'));
    await relay.relayOnce();
    expect(await outbox.discardDead()).toBe(1);
    expect(await outbox.listDead()).toEqual([]);
    expect(await store.stats()).toMatchObject({ pending: 0, dead: 0 });
    await client.close();
  });

  // A record whose publish kills the relay (a payload that crashes the process, an OOM) used to be
  // claimed again after every lease for ever: its failure was never marked, so never counted.
  it('a record whose relay dies while publishing it counts one attempt per death, goes out alone, and is dead after maxAttempts; its neighbours count that first death only', async () => {
    const { client, store, broker, outbox } = await setup();
    const poison = await store.transaction((tx) => outbox.enqueue(tx, 'orders', { n: 0 }, { key: 'k' }));
    await store.transaction((tx) => outbox.enqueue(tx, 'orders', { n: 1 }, { key: 'k' }));
    await store.transaction((tx) => outbox.enqueue(tx, 'orders', { n: 2 }));
    await store.transaction((tx) => outbox.enqueue(tx, 'orders', { n: 3 }));
    const lapse = () => new Promise((r) => setTimeout(r, 15));
    // A relay claims all four and dies before marking any.
    expect((await store.claim(10, 5)).map((r) => r.attempts)).toEqual([1, 1, 1, 1]);
    await lapse();
    // The suspects go out one at a time, oldest first; each death counts against that one only.
    for (const attempts of [2, 3]) {
      const again = await store.claim(10, 5);
      expect(again.map((r) => [r.envelope.id, r.attempts])).toEqual([[poison, attempts]]);
      await lapse();
    }
    const relay = new OutboxRelay(store, client, { maxAttempts: 3, backoff: { initialDelayMs: 1, maxDelayMs: 1 } });
    // Claimed a fourth time: past maxAttempts, dead without being published again; its key moves on.
    expect(await relay.relayOnce()).toBe(0);
    expect(broker.published('orders')).toEqual([]);
    const dead = await outbox.listDead();
    expect(dead.map((d) => [d.envelope.id, d.attempts])).toEqual([[poison, 4]]);
    expect(dead[0]!.lastError).toMatch(/died or hung/);
    // The others were suspects of the first death only: each goes out alone, at attempt 2.
    for (let i = 0; i < 3; i += 1) expect(await relay.relayOnce()).toBe(1);
    expect(bodies(broker.published('orders'))).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(await store.stats()).toMatchObject({ pending: 0, dead: 1 });
    await client.close();
  });

  it('marks are fenced by the claim: a relay whose lease was taken over changes nothing', async () => {
    const { client, store, outbox } = await setup();
    await store.transaction((tx) => outbox.enqueue(tx, 'orders', { n: 1 }, { key: 'k' }));
    const [stale] = await store.claim(10, 20);
    await new Promise((r) => setTimeout(r, 40));
    const [current] = await store.claim(10, 60_000); // the lease lapsed: another relay takes over
    expect(current!.seq).toBe(stale!.seq);
    expect(current!.claimToken).not.toBe(stale!.claimToken);
    expect(await store.markPublished([stale!])).toBe(0);
    expect(await store.markFailed(stale!, new MqError('TIMEOUT', 'late'), new Date())).toBe(0);
    expect(await store.markDead(stale!, new MqError('TOO_LARGE', 'late'))).toBe(0);
    expect(store.pending).toBe(1);
    expect(await store.claim(10, 60_000)).toEqual([]); // still the new owner's
    expect(await outbox.listDead()).toEqual([]);
    expect(await store.markPublished([current!])).toBe(1);
    expect(store.pending).toBe(0);
    await client.close();
  });

  it('a relay whose claim was taken over while it published logs it and leaves the row to the new owner', async () => {
    const { client, store, broker, outbox } = await setup();
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (_: object, msg: string) => void warnings.push(msg) };
    await store.transaction((tx) => outbox.enqueue(tx, 'orders', { n: 1 }));
    // The store hands out a claim that a second relay takes over before the first one marks it.
    const takeover: OutboxStore<MemoryTx> = Object.create(store) as OutboxStore<MemoryTx>;
    takeover.claim = async (limit) => {
      const records = await store.claim(limit, 1);
      await new Promise((r) => setTimeout(r, 5));
      await store.claim(limit, 60_000);
      return records;
    };
    takeover.markPublished = (records) => store.markPublished(records);
    const relay = new OutboxRelay(takeover, client, { logger });
    expect(await relay.relayOnce()).toBe(0);
    expect(broker.published('orders')).toHaveLength(1); // published, at least once
    expect(store.pending).toBe(1); // but the row is the new owner's to mark
    expect(warnings.some((w) => /claim/.test(w))).toBe(true);
    await client.close();
  });

  it('validates its options: leaseMs must outlast the client publish timeout; unknown keys and bad values are CONFIG', async () => {
    const { client, store } = await setup(); // publish.timeoutMs: 50
    expect(() => new OutboxRelay(store, client, { leaseMs: 50 })).toThrow(/leaseMs.*publish\.timeoutMs|publish\.timeoutMs.*leaseMs/);
    expectConfig(() => new OutboxRelay(store, client, { leaseMs: 50 }));
    expectConfig(() => new OutboxRelay(store, client, { leaseMs: 51 }), false);
    expectConfig(() => new OutboxRelay(store, client, { batchSize: -1 }), true, 'batchSize');
    expectConfig(() => new OutboxRelay(store, client, { batchSize: Number.NaN }), true, 'batchSize');
    expectConfig(() => new OutboxRelay(store, client, { maxAttempts: 0 }), true, 'maxAttempts');
    expectConfig(() => new OutboxRelay(store, client, { maxAttempts: Number.POSITIVE_INFINITY }), false);
    expectConfig(() => new OutboxRelay(store, client, { backoff: { initialDelayMs: -5 } }), true, 'backoff.initialDelayMs');
    expectConfig(() => new OutboxRelay(store, client, { pollIntervalMs: '1s' } as never), true, 'pollIntervalMs');
    expectConfig(() => new OutboxRelay(store, client, { leseMs: 60_000 } as never), true, 'leseMs');
    const slow = await connect(`memory://${uniqueName('slow')}`, { adapters: [memory()], publish: { timeoutMs: 45_000 } });
    // The default lease follows the publish timeout.
    expectConfig(() => new OutboxRelay(store, slow), false);
    expectConfig(() => new OutboxRelay(store, slow, { leaseMs: 30_000 }), true, 'leaseMs');
    await slow.close();
    await client.close();
  });

  it('wakes on new work instead of waiting for the poll interval', async () => {
    const { client, store, broker, outbox } = await setup();
    const relay = new OutboxRelay(store, client, { pollIntervalMs: 60_000 });
    relay.start();
    await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    await store.transaction((tx) => outbox.enqueue(tx, 'orders', { n: 1 }));
    await until(() => broker.published('orders').length === 1, 2_000);
    expect(Date.now() - started).toBeLessThan(1_000);
    await relay.stop();
    await client.close();
  });

  it('reports backlog gauges and failures, and runs the store maintenance', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const { client, store, broker, outbox } = await setup();
    broker.injectSendFailures(new MqError('REJECTED', 'not now'));
    await store.transaction(async (tx) => {
      await outbox.enqueue(tx, 'orders', { n: 1 });
      await outbox.enqueue(tx, 'orders', { n: 2 });
    });
    const relay = new OutboxRelay(store, client, { meterProvider, maintenanceIntervalMs: 0, backoff: { initialDelayMs: 5_000 } });
    await relay.relayOnce();
    const before = await reader.values();
    expect(before['mqkit.outbox.pending']).toBe(1);
    expect(before['mqkit.outbox.failing']).toBe(1);
    expect(before['mqkit.outbox.published']).toBe(1);
    expect(before['mqkit.outbox.publish_failures']).toBe(1);
    expect(before['mqkit.outbox.oldest_age']).toBeGreaterThanOrEqual(0);
    expect(before['mqkit.outbox.dead']).toBe(0);
    expect(store.size).toBe(2);
    relay.start();
    await until(() => store.size === 1);
    await relay.stop();
    await client.close();
  });
});
