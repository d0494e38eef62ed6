/**
 * RabbitMQ 4.x checks (#21), on the 3.10 broker this machine has. 4.0 removed classic queue
 * mirroring and 4.3 denies by default transient non-exclusive queues (`transient_nonexcl_queues`),
 * global QoS (`global_qos`), `x-queue-master-locator` (`queue_master_locator`), and the queue
 * arguments `x-queue-mode` / `x-queue-version: 1` (CQv1 removed). The delayed-message-exchange
 * plugin is archived. 4.1 refuses a negotiated frame_max below 8192. 3.10 has no deprecated-features
 * switch (3.13+), so this suite records every AMQP method the adapter sends through amqplib while
 * it runs each topology path (declare, subscribe with retries and dead-lettering, delayed publish,
 * an ordered group), then applies 4.x's rules to what was sent. It also lists the queues on the
 * broker with rabbitmqctl. A self-check proves that the recorder sees what a violation looks like.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect, type Client } from '@mqkit/core';
import { rabbitmq } from '@mqkit/rabbitmq';
import amqp from 'amqplib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueTopic } from '../src/names.ts';
import { REPO_ROOT } from '../src/resolve.ts';
import { waitFor } from '../src/wait.ts';
import { deleteTopicResources } from './cleanup.ts';

const { url } = requireBroker('rabbitmq');
const topics = new Set<string>();
const clients: Client[] = [];

// AMQP 0-9-1 method ids (class << 16 | method), as amqplib's defs number them.
const QUEUE_DECLARE = (50 << 16) | 10;
const EXCHANGE_DECLARE = (40 << 16) | 10;
const BASIC_QOS = (60 << 16) | 10;

interface Sent {
  method: number;
  fields: Record<string, unknown>;
  frameMax: number;
}
const sent: Sent[] = [];
let restore: (() => void) | undefined;

/**
 * Wraps `_rpc` of amqplib's base channel class, which every synchronous method of every channel
 * goes through, adapter channels included. vitest loads amqplib from node_modules once, so this
 * is the adapter's copy too. The check below makes sure by requiring the adapter's declarations.
 */
beforeAll(async () => {
  const conn = await amqp.connect(url);
  const ch = await conn.createChannel();
  let proto: object | null = Object.getPrototypeOf(ch) as object;
  while (proto && !Object.hasOwn(proto, '_rpc')) proto = Object.getPrototypeOf(proto) as object | null;
  await conn.close();
  if (!proto) throw new Error('amqplib has no _rpc on its channel classes: this suite needs updating');
  const target = proto as { _rpc: (this: { connection: { frameMax: number } }, method: number, fields: Record<string, unknown>, ...rest: unknown[]) => unknown };
  const original = target._rpc;
  target._rpc = function (method, fields, ...rest) {
    sent.push({ method, fields: { ...fields }, frameMax: this.connection.frameMax });
    return original.call(this, method, fields, ...rest);
  };
  restore = () => {
    target._rpc = original;
  };
});

afterAll(async () => {
  restore?.();
  await Promise.allSettled(clients.map((c) => c.close({ timeoutMs: 0 })));
  await deleteTopicResources(url, topics);
}, 120_000);

/** What RabbitMQ 4.x (4.3's defaults) would refuse or ignore in the recorded methods. */
function rabbitmq4Violations(methods: readonly Sent[]): string[] {
  const out: string[] = [];
  for (const { method, fields, frameMax } of methods) {
    if (frameMax !== 0 && frameMax < 8192) out.push(`frame_max ${frameMax} < 8192 (refused by 4.1+)`);
    const args = (fields['arguments'] ?? {}) as Record<string, unknown>;
    if (method === QUEUE_DECLARE && !fields['passive']) {
      const name = String(fields['queue']);
      if (!fields['durable'] && !fields['exclusive']) out.push(`queue "${name}" is transient and not exclusive (transient_nonexcl_queues, denied by 4.3)`);
      for (const key of Object.keys(args)) {
        if (key.startsWith('x-ha-')) out.push(`queue "${name}" has ${key} (classic mirroring, removed in 4.0)`);
        if (key === 'x-queue-master-locator') out.push(`queue "${name}" has x-queue-master-locator (queue_master_locator, denied by 4.3)`);
        if (key === 'x-queue-mode') out.push(`queue "${name}" has x-queue-mode (CQv1, removed in 4.3)`);
      }
      if (args['x-queue-version'] === 1) out.push(`queue "${name}" has x-queue-version 1 (CQv1, removed in 4.3)`);
    }
    if (method === EXCHANGE_DECLARE && fields['type'] === 'x-delayed-message') out.push(`exchange "${String(fields['exchange'])}" needs the archived delayed-message-exchange plugin`);
    if (method === BASIC_QOS && fields['global']) out.push('basic.qos with global=true (global_qos, denied by 4.3)');
  }
  return out;
}

it('the self-check: a transient non-exclusive queue and a global QoS are reported', async () => {
  const from = sent.length;
  const conn = await amqp.connect(url);
  const ch = await conn.createChannel();
  const name = uniqueTopic('rmq4-selfcheck');
  await ch.assertQueue(name, { durable: false, exclusive: false, autoDelete: true });
  await ch.prefetch(5, true);
  await ch.deleteQueue(name);
  await conn.close();
  const found = rabbitmq4Violations(sent.slice(from));
  expect(found).toEqual([`queue "${name}" is transient and not exclusive (transient_nonexcl_queues, denied by 4.3)`, 'basic.qos with global=true (global_qos, denied by 4.3)']);
});

it('every path of the adapter uses only what RabbitMQ 4.x keeps: durable quorum queues, topic exchanges, per-consumer QoS, frame_max 131072', async () => {
  const from = sent.length;
  const topic = uniqueTopic('rmq4');
  const ordered = uniqueTopic('rmq4-ordered');
  topics.add(topic).add(ordered);
  const client = await connect(url, { adapters: [rabbitmq()] });
  clients.push(client);
  await client.declare({ topic, groups: ['billing'], deadLetter: true });

  // Retries with a delay (the group's retry delay queue), then the dead-letter topic.
  const attempts = new Map<string, number>();
  await client.subscribe<{ n: number }>(topic, {
    group: 'billing',
    retry: { maxAttempts: 2, initialDelayMs: 100, maxDelayMs: 100 },
    handler: (d) => {
      attempts.set(d.id, d.attempt);
      if (d.payload.n === 1) throw new Error('always fails: retried once, then dead-lettered');
    },
  });
  const deadLettered: string[] = [];
  await client.subscribe(`${topic}-dlq`, { group: 'audit', handler: (d) => void deadLettered.push(d.id) });
  // An ordered group (single active consumer) on another topic.
  const inOrder: number[] = [];
  await client.subscribe<{ n: number }>(ordered, { group: 'ledger', ordered: true, handler: (d) => void inOrder.push(d.payload.n) });

  const failing = await client.publish(topic, { n: 1 });
  await client.publish(topic, { n: 2 }, { delayMs: 300 }); // a delayed publish
  for (let n = 0; n < 3; n += 1) await client.publish(ordered, { n }, { key: 'k' });
  await waitFor('the dead letter, the delayed message and the ordered ones', () => deadLettered.includes(failing.id) && attempts.size >= 2 && inOrder.length >= 3, { timeoutMs: 30_000 });
  expect(attempts.get(failing.id)).toBe(2);

  const mine = sent.slice(from);
  const declared = mine.filter((m) => m.method === QUEUE_DECLARE && !m.fields['passive']).map((m) => String(m.fields['queue']));
  // The recorder saw the adapter's own channels: group, retry delay and dead-letter queues.
  expect(declared).toContain(`${topic}.billing`);
  expect(declared.some((q) => q.startsWith(`${topic}.billing~retry~`))).toBe(true);
  expect(declared.some((q) => q.startsWith(`${topic}-dlq`))).toBe(true);
  expect(mine.some((m) => m.method === BASIC_QOS)).toBe(true);
  expect(rabbitmq4Violations(mine)).toEqual([]);
  // Every queue mqkit declares is a quorum queue (no classic queue left to lose on 4.x).
  for (const m of mine.filter((x) => x.method === QUEUE_DECLARE && !x.fields['passive'])) {
    expect((m.fields['arguments'] as Record<string, unknown>)['x-queue-type'], String(m.fields['queue'])).toBe('quorum');
  }
  // amqplib proposes 131072 and 3.10 agrees: the value 4.x's default negotiates too.
  expect(new Set(mine.map((m) => m.frameMax))).toEqual(new Set([131072]));

  // The broker's view: every queue of these topics is durable, none exclusive.
  const { stdout } = await promisify(execFile)('bash', [join(REPO_ROOT, 'scripts', 'brokers', 'brokers.sh'), 'rabbitmqctl', 'list_queues', '-q', 'name', 'durable', 'exclusive', 'type'], { cwd: REPO_ROOT, timeout: 60_000 });
  const rows = stdout
    .split('\n')
    .map((l) => l.split('\t'))
    .filter(([name]) => name !== undefined && [topic, ordered].some((t) => name === t || name.startsWith(`${t}.`) || name.startsWith(`${t}-dlq`)));
  expect(rows.length).toBeGreaterThanOrEqual(4);
  // (rabbitmqctl 3.10 leaves `exclusive` blank for a queue that is not.)
  for (const [name, durable, exclusive, type] of rows) expect({ name, durable, exclusive: exclusive === 'true', type }).toEqual({ name, durable: 'true', exclusive: false, type: 'quorum' });
}, 90_000);
