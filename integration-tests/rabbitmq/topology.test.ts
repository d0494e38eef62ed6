/**
 * Topology on the real RabbitMQ (#22): `client.declare()` makes the topic exchange, a quorum
 * queue per group bound to it (dead-lettering into the -dlq exchange) and that exchange's
 * keep-all queue; `verify` checks them passively; the errors of `verify` mode and of publishing
 * where nothing is declared name the topic, the group and the call that creates them.
 */
import { connect, type ConnectOptions } from '@mqkit/core';
import { rabbitmq } from '@mqkit/rabbitmq';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { rejectedMqError } from '@mqkit/testing/conformance';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueTopic } from '../src/names.ts';
import { runQuickstart } from '../src/quickstart.ts';
import { deleteTopicResources } from './cleanup.ts';

const { url } = requireBroker('rabbitmq');
const topics = new Set<string>();
const clients: Array<{ close(o?: { timeoutMs?: number }): Promise<void> }> = [];

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close({ timeoutMs: 0 })));
  await deleteTopicResources(url, topics);
}, 120_000);

async function open(options: ConnectOptions = {}) {
  const client = await connect(url, { adapters: [rabbitmq()], ...options });
  clients.push(client);
  return client;
}

function fresh(prefix: string): string {
  const topic = uniqueTopic(prefix);
  topics.add(topic);
  return topic;
}

/** Whether the queue exists (a passive declare on a connection of its own). */
async function queueExists(name: string): Promise<boolean> {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    await ch.checkQueue(name);
    return true;
  } catch {
    return false;
  } finally {
    await conn.close().catch(() => {});
  }
}

describe('rabbitmq topology (#22)', () => {
  it("the README quickstart runs with the URL alone and topology: 'create'", async () => {
    await runQuickstart(url, fresh('quickstart'), 'billing');
  }, 60_000);

  it('declare makes the exchange, a quorum queue per group and the dead-letter queue; verify passes; a declared group keeps an early publish', async () => {
    const client = await open({ topology: 'verify' });
    const topic = fresh('declared');
    await client.declare({ topic, groups: ['billing', 'shipping'] });
    await client.verify({ topic, groups: ['billing', 'shipping'] });
    expect(await queueExists(`${topic}.billing`)).toBe(true);
    expect(await queueExists(`${topic}.shipping`)).toBe(true);
    expect(await queueExists(`${topic}-dlq`)).toBe(true);
    // Routable now, before any subscriber, and kept for both groups.
    const receipt = await client.publish(topic, { n: 1 });
    const got: string[] = [];
    await client.subscribe(topic, { group: 'billing', handler: (m) => void got.push(m.id) });
    const deadline = Date.now() + 10_000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([receipt.id]);
  }, 60_000);

  it("a group declared with its subscription's queue option gets that queue", async () => {
    const client = await open();
    const topic = fresh('custom');
    await client.declare({ topic, groups: [{ name: 'ops', options: { queue: `${topic}.ops-queue` } }] });
    expect(await queueExists(`${topic}.ops-queue`)).toBe(true);
    expect(await queueExists(`${topic}.ops`)).toBe(false);
    await client.verify({ topic, groups: [{ name: 'ops', options: { queue: `${topic}.ops-queue` } }] });
  }, 30_000);

  it('verify names the missing exchange, group queues and dead-letter exchange, and the declare call', async () => {
    const client = await open();
    const topic = fresh('missing');
    const err = await rejectedMqError(client.verify({ topic, groups: ['billing'] }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain(`topic "${topic}" does not exist`);
    expect(err.message).toContain(`consumer group "billing" of topic "${topic}" does not exist`);
    expect(err.message).toContain(`dead-letter topic "${topic}-dlq" does not exist`);
    expect(err.message).toContain(`client.declare({ topic: '${topic}', groups: ['billing'] })`);
    // Only the group missing: named alone.
    await client.declare({ topic, groups: [] });
    const group = await rejectedMqError(client.verify({ topic, groups: ['billing'] }));
    expect(group.details.missing).toEqual([{ kind: 'group', name: 'billing', topic }]);
    expect(group.message).toContain(`consumer group "billing" of topic "${topic}" does not exist`);
  }, 30_000);

  it("verify mode: subscribe to a missing group fails fast with NOT_FOUND and declares nothing", async () => {
    const client = await open({ topology: 'verify' });
    const topic = fresh('verify');
    const err = await rejectedMqError(client.subscribe(topic, { group: 'billing', handler: () => {} }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain(`client.declare({ topic: '${topic}', groups: ['billing'] })`);
    expect(await queueExists(`${topic}.billing`)).toBe(false);
  }, 30_000);

  it('publishing where no group is declared fails UNROUTABLE naming the topic and the declare call', async () => {
    const client = await open();
    const topic = fresh('unroutable');
    const err = await rejectedMqError(client.publish(topic, { n: 1 }));
    expect(err.code).toBe('UNROUTABLE');
    expect(err.message).toContain(`topic "${topic}"`);
    expect(err.message).toContain(`client.declare({ topic: '${topic}', groups: [...] })`);
  }, 30_000);

  it('with the adapter option declare=false, publishing to a missing exchange names it and how to create it', async () => {
    const client = await open({ options: { declare: false }, publish: { timeoutMs: 5_000 } });
    const topic = fresh('nodeclare');
    const err = await rejectedMqError(client.publish(topic, { n: 1 }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain(`topic "${topic}" does not exist`);
    expect(err.message).toContain('declare=true');
  }, 30_000);
});
