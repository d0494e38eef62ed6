import { memory, memoryBroker, MemoryOutboxStore } from '@mqkit/testing';
import { uniqueName } from '@mqkit/testing/conformance';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { connect } from './connect.ts';
import { MqError } from './errors.ts';
import { TestMetricReader } from './metric-reader.test-util.ts';
import { Outbox, OutboxRelay } from './outbox.ts';

async function setup() {
  const name = uniqueName('outbox');
  const client = await connect(`memory://${name}`, { adapters: [memory()], publish: { timeoutMs: 50, initialDelayMs: 5, maxDelayMs: 10 } });
  const store = new MemoryOutboxStore();
  return { client, store, broker: memoryBroker(name), outbox: new Outbox(store, client) };
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

  it('retries a failed publish with backoff and keeps per-key order', async () => {
    const { client, store, broker, outbox } = await setup();
    broker.injectSendFailures(new MqError('REJECTED', 'not now'));
    await store.transaction(async (tx) => {
      for (let seq = 0; seq < 3; seq += 1) await outbox.enqueue(tx, 'orders', { seq }, { key: 'customer-1' });
    });
    const relay = new OutboxRelay(store, client, { pollIntervalMs: 10, backoff: { initialDelayMs: 10, maxDelayMs: 20 } });
    relay.start();
    await until(() => store.pending === 0);
    await relay.stop();
    const seqs = broker.published('orders').map((e) => (JSON.parse(Buffer.from(e.body).toString()) as { seq: number }).seq);
    // The first attempt of seq 0 failed alone; 1 and 2 went out with it, then 0 was retried.
    expect(new Set(seqs)).toEqual(new Set([0, 1, 2]));
    expect(seqs).toHaveLength(3);
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
    expect(store.size).toBe(2);
    relay.start();
    await until(() => store.size === 1);
    await relay.stop();
    await client.close();
  });
});
