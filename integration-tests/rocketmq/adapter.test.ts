/**
 * RocketMQ-specific behaviour beyond the conformance suite: the heartbeat that keeps a long
 * handler's message invisible (and the ack after a renewal, server bug apache/rocketmq#9583),
 * typed-topic handling, error classification and secret hygiene.
 */
import { MqError, type Client } from '@mqkit/core';
import { RocketmqAdmin, type RocketmqNative } from '@mqkit/rocketmq';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueGroup, uniqueTopic } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';
import { connectRocketmq, freshTopic, INVISIBLE_MS } from './mqkit-support.ts';

const clients: Client[] = [];
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close({ timeoutMs: 0 })));
});

async function client(options: Record<string, unknown> = {}): Promise<Client> {
  const c = await connectRocketmq(options);
  clients.push(c);
  return c;
}

describe('rocketmq adapter', () => {
  it('a handler running 2.5× the invisible duration keeps its message (heartbeat); the ack after renewals holds', async () => {
    const topic = await freshTopic('hb', 'NORMAL');
    const c = await client();
    const deliveries: number[] = [];
    await c.subscribe(topic, {
      group: uniqueGroup('hb'),
      handler: async (d) => {
        deliveries.push(d.attempt);
        if (deliveries.length === 1) await sleep(INVISIBLE_MS * 2.5);
      },
    });
    await c.publish(topic, { n: 1 });
    await waitFor('the delivery', () => deliveries.length >= 1, { timeoutMs: 15_000 });
    await sleep(INVISIBLE_MS * 2.5 + INVISIBLE_MS + 3000);
    expect(deliveries).toEqual([1]);
  }, 90_000);

  it('FIFO topics: unkeyed messages are accepted, keyed ones keep their key', async () => {
    const topic = await freshTopic('fifo', 'FIFO');
    const c = await client();
    const got: Array<string | undefined> = [];
    await c.subscribe(topic, { group: uniqueGroup('fifo'), ordered: true, handler: (d) => void got.push(d.key) });
    await c.publish(topic, { n: 1 });
    await c.publish(topic, { n: 2 }, { key: 'k' });
    await waitFor('both', () => got.length >= 2, { timeoutMs: 15_000 });
    expect(got).toContain('k');
    expect(got).toContain(undefined);
  }, 60_000);

  it('a delayed publish to a NORMAL topic is refused with UNSUPPORTED, not sent', async () => {
    const topic = await freshTopic('nodelay', 'NORMAL');
    const c = await client();
    const err = await c.publish(topic, { n: 1 }, { delayMs: 2000 }).catch((e: unknown) => e);
    expect(MqError.is(err, 'UNSUPPORTED')).toBe(true);
  }, 30_000);

  it('an unknown topic fails fast with NOT_FOUND (not retried for 30 s)', async () => {
    const c = await client();
    const started = Date.now();
    const err = await c.publish(uniqueTopic('missing'), { n: 1 }).catch((e: unknown) => e);
    expect(MqError.is(err, 'NOT_FOUND')).toBe(true);
    expect((err as MqError).retryable).toBe(false);
    expect(Date.now() - started).toBeLessThan(15_000);
    // The producer keeps working for other topics.
    const topic = await freshTopic('after-missing', 'NORMAL');
    await expect(c.publish(topic, { n: 1 })).resolves.toMatchObject({ topic });
  }, 60_000);

  it('subscribing to an unknown topic rejects with NOT_FOUND', async () => {
    const c = await client();
    const err = await c.subscribe(uniqueTopic('missing'), { group: uniqueGroup('x'), handler: () => {} }).catch((e: unknown) => e);
    expect(MqError.is(err, 'NOT_FOUND')).toBe(true);
  }, 30_000);

  it('publish resolves with the broker receipt (RocketMQ message id) and concurrent sends are not serialised', async () => {
    const topic = await freshTopic('receipt', 'NORMAL');
    const c = await client();
    const one = await c.publish(topic, { n: 0 });
    expect(one.receipt).toMatch(/^[0-9A-F]{20,}$/);
    const t0 = Date.now();
    await c.publish(topic, { n: 1 });
    const single = Date.now() - t0;
    const t1 = Date.now();
    await Promise.all(Array.from({ length: 64 }, (_, n) => c.publish(topic, { n })));
    const parallel = Date.now() - t1;
    console.info(`[rocketmq] one publish ${single} ms, 64 concurrent ${parallel} ms`);
    expect(parallel).toBeLessThan(Math.max(64 * single, 2000) / 2);
  }, 30_000);

  it('credentials never appear in errors', async () => {
    // The local proxy runs without ACL: the signed request is accepted and the error is NOT_FOUND.
    const c = await client({ accessKey: 'AK', secretKey: 'super-secret-value' });
    const err = await c.publish(uniqueTopic('any'), { n: 1 }).catch((e: unknown) => e);
    expect(MqError.is(err)).toBe(true);
    expect(JSON.stringify({ message: String(err), details: (err as MqError).details })).not.toContain('super-secret-value');
  }, 30_000);

  it('the declare step creates typed topics and orderly groups; the native escape hatch exposes it', async () => {
    const c = await client();
    const native = c.native as RocketmqNative;
    expect(native.producer).toBeDefined();
    expect(native.admin).toBeInstanceOf(RocketmqAdmin);
    const topic = uniqueTopic('declared');
    await native.admin!.createTopic(topic, 'DELAY');
    await native.admin!.createGroup(uniqueGroup('declared'), { orderly: true });
    const got: number[] = [];
    await waitFor('the route', async () => c.subscribe(topic, { group: uniqueGroup('d'), handler: () => void got.push(Date.now()) }).then(() => true), { timeoutMs: 20_000, intervalMs: 1000 });
    const sent = Date.now();
    await c.publish(topic, { n: 1 }, { delayMs: 2000 });
    await waitFor('the delayed message', () => got.length >= 1, { timeoutMs: 15_000 });
    expect(got[0]! - sent).toBeGreaterThanOrEqual(1950);
  }, 60_000);
});
