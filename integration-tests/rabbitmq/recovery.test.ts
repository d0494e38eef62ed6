/**
 * Recovery without killing the shared broker: a dropped socket (what a network cut or a broker
 * restart looks like to the client), a channel closed by a protocol error, a queue deleted under
 * its consumer, and the typed errors for unroutable and unknown destinations.
 */
import amqp from 'amqplib';
import { connect, MqError, type Client } from '@mqkit/core';
import { rabbitmq, type RabbitmqNative } from '@mqkit/rabbitmq';
import { afterAll, describe, expect, it } from 'vitest';
import { rejectedMqError } from '@mqkit/testing/conformance';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueGroup, uniqueTopic } from '../src/names.ts';
import { waitFor } from '../src/wait.ts';
import { deleteTopicResources } from './cleanup.ts';

const { url } = requireBroker('rabbitmq');
const clients: Client[] = [];
const topics = new Set<string>();
const track = (topic: string): string => {
  topics.add(topic);
  return topic;
};
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close({ timeoutMs: 1_000 })));
  await deleteTopicResources(url, topics).catch((err) => console.warn('cleanup failed', err));
}, 120_000);

async function client(options: Record<string, unknown> = {}): Promise<Client> {
  const c = await connect(url, { adapters: [rabbitmq()], options, publish: { timeoutMs: 60_000 } });
  clients.push(c);
  return c;
}

function nativeOf(c: Client): RabbitmqNative {
  return c.native as RabbitmqNative;
}

/** Cuts the TCP connection under amqplib, as a network failure would. */
function dropSocket(c: Client): void {
  const model = nativeOf(c).connection as unknown as { connection: { stream: { destroy(): void } } } | undefined;
  if (!model) throw new Error('not connected');
  model.connection.stream.destroy();
}

describe('rabbitmq adapter: typed publish failures', () => {
  it('a publish to a topic no group is bound to rejects UNROUTABLE (never a silent drop)', async () => {
    const c = await client();
    const err = await rejectedMqError(c.publish(track(uniqueTopic('nobody')), { n: 1 }));
    expect(err.code).toBe('UNROUTABLE');
    expect(err.retryable).toBe(false);
  });

  it('with declare=false, a publish to a missing exchange rejects NOT_FOUND and the channel recovers', async () => {
    const managed = await client({ declare: false });
    const err = await rejectedMqError(managed.publish(track(uniqueTopic('missing')), { n: 1 }));
    expect(err.code).toBe('NOT_FOUND');
    // The 404 closed the publish channel; the next publish opens a new one.
    const topic = track(uniqueTopic('managed'));
    const group = uniqueGroup('g');
    const helper = await client();
    await nativeOf(helper).declareGroup(topic, group);
    const got: string[] = [];
    await managed.subscribe(topic, { group, handler: (d) => void got.push(d.id) });
    const r = await managed.publish(topic, { n: 2 });
    await waitFor('the delivery', () => got.includes(r.id), { timeoutMs: 10_000 });
  });
});

describe('rabbitmq adapter: recovery', () => {
  it('a dropped connection: in-flight publishes are retried, none lost; the consumer resubscribes by itself', async () => {
    const topic = track(uniqueTopic('drop'));
    const group = uniqueGroup('g');
    const c = await client();
    const seen = new Set<string>();
    await c.subscribe(topic, { group, concurrency: 16, handler: (d) => void seen.add(d.id) });
    const publishing = Promise.all(Array.from({ length: 2_000 }, (_, n) => c.publish(topic, { n }, { id: `d-${n}` })));
    await new Promise((r) => setTimeout(r, 30));
    dropSocket(c);
    const receipts = await publishing;
    expect(receipts).toHaveLength(2_000);
    await waitFor('all 2000 delivered after the reconnect', () => receipts.every((r) => seen.has(r.id)), { timeoutMs: 30_000 });
    // And it keeps working afterwards.
    const after = await c.publish(topic, { n: -1 });
    await waitFor('a delivery after recovery', () => seen.has(after.id), { timeoutMs: 10_000 });
  });

  it('a queue deleted under its consumer is declared again and consumption resumes', async () => {
    const topic = track(uniqueTopic('deleted'));
    const group = uniqueGroup('g');
    const c = await client();
    const seen = new Set<string>();
    await c.subscribe(topic, { group, handler: (d) => void seen.add(d.id) });
    const raw = await amqp.connect(url);
    try {
      const ch = await raw.createChannel();
      await ch.deleteQueue(`${topic}.${group}`);
      await ch.close();
    } finally {
      await raw.close();
    }
    // Until the consumer re-declared its queue, publishes may be unroutable: retry until routed.
    const receipt = await waitFor(
      'a routable publish',
      async () => {
        try {
          return await c.publish(topic, { n: 1 });
        } catch (err) {
          if (MqError.is(err, 'UNROUTABLE')) return undefined;
          throw err;
        }
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    await waitFor('the delivery on the re-declared queue', () => seen.has(receipt.id), { timeoutMs: 10_000 });
  });

  it('deliveries of a lost connection are redelivered, not lost: handled again, or settled through the redelivered copy', async () => {
    const topic = track(uniqueTopic('stale'));
    const group = uniqueGroup('g');
    const c = await client();
    let release: (() => void) | undefined;
    const attempts: number[] = [];
    await c.subscribe(topic, {
      group,
      handler: async (d) => {
        attempts.push(d.attempt);
        if (attempts.length === 1) await new Promise<void>((r) => (release = r));
      },
    });
    await c.publish(topic, { n: 1 });
    await waitFor('the first delivery', () => release !== undefined, { timeoutMs: 10_000 });
    dropSocket(c);
    await new Promise((r) => setTimeout(r, 200));
    // Either the ack of the old channel is refused and the broker's redelivery is handled again, or
    // the redelivery arrived while the handler still ran and core settles it with the new copy.
    release!();
    await new Promise((r) => setTimeout(r, 3_000));
    if (attempts.length >= 2) {
      expect(attempts[1]).toBeGreaterThanOrEqual(2);
      return;
    }
    await c.close({ timeoutMs: 5_000 });
    const raw = await amqp.connect(url);
    try {
      const ch = await raw.createChannel();
      expect((await ch.checkQueue(`${topic}.${group}`)).messageCount, 'acked through the redelivered copy').toBe(0);
    } finally {
      await raw.close();
    }
  });
});
