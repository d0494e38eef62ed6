/**
 * Topology on the SQS/SNS emulators (#22): `client.declare()` in queue mode (ElasticMQ: one queue
 * per topic, FIFO when `.fifo`) and SNS mode (moto: an SNS topic, one queue per group subscribed
 * to it), `verify`, and the errors: `verify` mode, a queue missing with declare=false, and an
 * endpoint without SNS (ElasticMQ with the default sns=true) pointing at sns=false / snsEndpoint.
 */
import type { Client, ConnectOptions } from '@mqkit/core';
import { afterAll, describe, expect, it } from 'vitest';
import { rejectedMqError } from '@mqkit/testing/conformance';
import { uniqueName } from '../src/names.ts';
import { runQuickstart } from '../src/quickstart.ts';
import { connectSqs, deleteTopicQueues, EMULATOR_CREDENTIALS, sqsEndpoints } from './harness.ts';
import { connect } from '@mqkit/core';
import { sqs } from '@mqkit/sqs';

const queueTopics: string[] = [];
const clients: Client[] = [];
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close({ timeoutMs: 0 })));
  await deleteTopicQueues(queueTopics);
});

async function open(mode: 'queue' | 'sns', options: ConnectOptions = {}, extra: Record<string, string> = {}): Promise<Client> {
  const client = await connectSqs(mode, options, extra);
  clients.push(client);
  return client;
}

async function receive(client: Client, topic: string, group: string, count: number): Promise<Set<number>> {
  const got = new Set<number>();
  await client.subscribe<{ n: number }>(topic, { group, handler: (m) => void got.add(m.payload.n), options: { waitTimeSec: 1 } });
  const deadline = Date.now() + 20_000;
  while (got.size < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return got;
}

/** MQ_URL alone: credentials come from the AWS provider chain (the emulators take any). */
function withEmulatorCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID ??= EMULATOR_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY ??= EMULATOR_CREDENTIALS.secretAccessKey;
}

describe('sqs topology, queue mode on ElasticMQ (#22)', () => {
  it("the README quickstart runs with the URL alone (sns=false) and topology: 'create'", async () => {
    withEmulatorCredentials();
    const { endpoint, region } = sqsEndpoints();
    const topic = uniqueName('quickstart');
    queueTopics.push(topic);
    await runQuickstart(`sqs://?region=${region}&endpoint=${encodeURIComponent(endpoint)}&sns=false`, topic, 'billing');
  }, 60_000);

  it('declare creates the topic queue and its dead-letter queue (FIFO for .fifo); verify passes; an early publish is kept', async () => {
    const client = await open('queue', { topology: 'verify' });
    const topic = uniqueName('declared');
    const fifo = uniqueName('declared', { fifo: true });
    queueTopics.push(topic, fifo);
    await client.declare({ topic, groups: ['billing'] });
    await client.declare({ topic: fifo, ordered: true, groups: ['billing'] });
    await client.verify({ topic, groups: ['billing'] });
    await client.verify({ topic: fifo, ordered: true });
    await Promise.all([1, 2, 3].map((n) => client.publish(topic, { n })));
    expect([...(await receive(client, topic, 'billing', 3))].sort()).toEqual([1, 2, 3]);
  }, 60_000);

  it('ordered needs a .fifo name: CONFIG naming it', async () => {
    const client = await open('queue');
    const err = await rejectedMqError(client.declare({ topic: 'orders', ordered: true }));
    expect(err.code).toBe('CONFIG');
    expect(err.message).toContain('"orders.fifo"');
  });

  it('verify mode: subscribe to a missing topic fails fast with NOT_FOUND naming it and the declare call', async () => {
    const client = await open('queue', { topology: 'verify' });
    const topic = uniqueName('missing');
    const err = await rejectedMqError(client.subscribe(topic, { group: 'billing', handler: () => {} }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.details.missing).toEqual([
      { kind: 'topic', name: topic },
      { kind: 'dead-letter topic', name: `${topic}-dlq` },
    ]);
    expect(err.message).toContain(`client.declare({ topic: '${topic}', groups: ['billing'] })`);
  }, 30_000);

  it('with the adapter option declare=false, subscribe to a missing queue names it and how to create it', async () => {
    const client = await open('queue', {}, { declare: 'false' });
    const topic = uniqueName('nodeclare');
    const err = await rejectedMqError(client.subscribe(topic, { group: 'billing', handler: () => {} }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain(`topic "${topic}" does not exist`);
    expect(err.message).toContain('declare=true');
  }, 30_000);

  it('an endpoint without SNS (ElasticMQ with the default sns=true): CONFIG pointing at sns=false and snsEndpoint', async () => {
    const { endpoint, region } = sqsEndpoints();
    const client = await connect(`sqs://?region=${region}&endpoint=${encodeURIComponent(endpoint)}`, {
      adapters: [sqs()],
      options: { credentials: EMULATOR_CREDENTIALS },
      topology: 'create',
      publish: { timeoutMs: 5_000 },
    });
    clients.push(client);
    const topic = uniqueName('nosns');
    for (const attempt of [client.declare({ topic, groups: ['billing'] }), client.subscribe(topic, { group: 'billing', handler: () => {} }), client.publish(topic, { n: 1 })]) {
      const err = await rejectedMqError(attempt);
      expect(err.code).toBe('CONFIG');
      expect(err.message).toContain('does not serve SNS');
      expect(err.message).toContain('sns=false');
      expect(err.message).toContain('snsEndpoint');
    }
  }, 30_000);
});

describe('sqs topology, SNS mode on moto (#22)', () => {
  it("the README quickstart runs with the URL alone (SNS fan-out) and topology: 'create'", async () => {
    withEmulatorCredentials();
    const { snsEndpoint, region } = sqsEndpoints();
    await runQuickstart(`sqs://?region=${region}&endpoint=${encodeURIComponent(snsEndpoint)}`, uniqueName('quickstart'), 'billing');
  }, 60_000);

  it('declare creates the SNS topic and a subscribed queue per group; each group keeps an early publish; verify passes', async () => {
    const client = await open('sns', { topology: 'verify' });
    const topic = uniqueName('fanout');
    await client.declare({ topic, groups: ['billing', 'shipping'] });
    await client.verify({ topic, groups: ['billing', 'shipping'] });
    await Promise.all([1, 2].map((n) => client.publish(topic, { n })));
    const [billing, shipping] = await Promise.all([receive(client, topic, 'billing', 2), receive(client, topic, 'shipping', 2)]);
    expect([...billing].sort()).toEqual([1, 2]);
    expect([...shipping].sort()).toEqual([1, 2]);
  }, 90_000);

  it("a group declared with its subscription's filter policy gets only what matches, published before it subscribed", async () => {
    const client = await open('sns');
    const topic = uniqueName('filtered');
    await client.declare({ topic, groups: [{ name: 'eu', options: { filterPolicy: { region: ['eu'] } } }, 'all'] });
    await client.publish(topic, { n: 1 }, { headers: { region: 'eu' } });
    await client.publish(topic, { n: 2 }, { headers: { region: 'us' } });
    const got = new Set<number>();
    await client.subscribe<{ n: number }>(topic, { group: 'eu', handler: (m) => void got.add(m.payload.n), options: { waitTimeSec: 1, filterPolicy: { region: ['eu'] } } });
    const all = await receive(client, topic, 'all', 2);
    await new Promise((r) => setTimeout(r, 1_500));
    expect([...got]).toEqual([1]);
    expect([...all].sort()).toEqual([1, 2]);
    const typo = await rejectedMqError(client.declare({ topic, groups: [{ name: 'eu', options: { filterPolcy: {} } }] }));
    expect(typo.code).toBe('CONFIG');
    expect(typo.message).toContain('filterPolcy');
  }, 90_000);

  it('verify names the missing SNS topic, group queue and dead-letter topic', async () => {
    const client = await open('sns');
    const topic = uniqueName('missing');
    const err = await rejectedMqError(client.verify({ topic, groups: ['billing'] }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.details.missing).toEqual([
      { kind: 'topic', name: topic },
      { kind: 'group', name: 'billing', topic },
      { kind: 'dead-letter topic', name: `${topic}-dlq` },
    ]);
  }, 30_000);
});
