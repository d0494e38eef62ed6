/**
 * Topology on the real Kafka broker (#22): the README quickstart on a new topic with
 * `topology: 'create'`, `client.declare()` through the admin client (partitions, the -dlq topic),
 * and the errors of `verify` mode and of the default mode for what does not exist.
 */
import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { rejectedMqError } from '@mqkit/testing/conformance';
import { uniqueTopic } from '../src/names.ts';
import { runQuickstart } from '../src/quickstart.ts';
import { brokers, closeAll, openKafka } from './harness.ts';

const admin = new Kafka({ clientId: 'mqkit-it-topology', brokers: brokers.split(','), logLevel: logLevel.NOTHING }).admin();
const adminReady = admin.connect();

afterAll(async () => {
  await closeAll();
  await adminReady.then(() => admin.disconnect()).catch(() => {});
});

async function partitionsOf(topic: string): Promise<number> {
  await adminReady;
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
  return topics[0]!.partitions.length;
}

describe('kafka topology (#22)', () => {
  it("the README quickstart runs with the URL alone and topology: 'create' (topic and -dlq created at subscribe)", async () => {
    const topic = uniqueTopic('quickstart');
    await runQuickstart(`kafka://${brokers}`, topic, 'billing');
    expect(await partitionsOf(topic)).toBe(3); // the adapter's numPartitions
    expect(await partitionsOf(`${topic}-dlq`)).toBe(3);
  }, 60_000);

  it('topics are created with the minInsyncReplicas option as min.insync.replicas', async () => {
    const client = await openKafka({ options: { minInsyncReplicas: 1, replicationFactor: 1 } });
    const topic = uniqueTopic('isr');
    await client.declare({ topic, deadLetter: false });
    await adminReady;
    const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['min.insync.replicas'] }] });
    const entry = resources[0]!.configEntries.find((e) => e.configName === 'min.insync.replicas');
    expect(entry?.configValue).toBe('1');
    expect(entry?.isDefault).toBe(false); // set on the topic, not inherited from the broker
  }, 60_000);

  it("'create' mode declares a topic before the first publish to it (the adapter's partitions, not the broker's auto-create)", async () => {
    const client = await openKafka({ topology: 'create' });
    const topic = uniqueTopic('publish-first');
    await client.publish(topic, { n: 1 });
    expect(await partitionsOf(topic)).toBe(3);
  }, 60_000);

  it('declare creates the topic with its partitions and the -dlq topic; verify passes; fewer partitions than declared is CONFIG', async () => {
    const client = await openKafka();
    const topic = uniqueTopic('declared');
    await client.declare({ topic, partitions: 5, groups: ['billing'] });
    expect(await partitionsOf(topic)).toBe(5);
    await client.verify({ topic, groups: ['billing'] });
    await client.declare({ topic, partitions: 5 }); // idempotent
    const err = await rejectedMqError(client.verify({ topic, partitions: 8 }));
    expect(err.code).toBe('CONFIG');
    expect(err.message).toContain(`topic "${topic}" has 5 partitions, fewer than the 8 declared`);
  }, 60_000);

  it('a declared group keeps what was published before its first subscriber, also with fromBeginning: false; verify names a group never declared', async () => {
    const client = await openKafka();
    const topic = uniqueTopic('early');
    await client.declare({ topic, groups: ['billing'] });
    const missing = await rejectedMqError(client.verify({ topic, groups: ['billing', 'audit'] }));
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.details.missing).toEqual([{ kind: 'group', name: 'audit', topic }]);
    const receipts = await Promise.all([1, 2, 3].map((n) => client.publish(topic, { n }, { key: `k${n}` })));
    const got = new Set<string>();
    await client.subscribe(topic, { group: 'billing', handler: (m) => void got.add(m.id), options: { fromBeginning: false } });
    const deadline = Date.now() + 20_000;
    while (got.size < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect([...got].sort()).toEqual(receipts.map((r) => r.id).sort());
  }, 60_000);

  it("verify mode: subscribe to a missing topic fails fast with NOT_FOUND naming it and the declare call", async () => {
    const client = await openKafka({ topology: 'verify' });
    const topic = uniqueTopic('missing');
    const started = Date.now();
    const err = await rejectedMqError(client.subscribe(topic, { group: 'billing', handler: () => {} }));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain(`topic "${topic}" does not exist`);
    expect(err.message).toContain(`dead-letter topic "${topic}-dlq" does not exist`);
    expect(err.message).toContain(`client.declare({ topic: '${topic}', groups: ['billing'] })`);
    expect(err.message).toContain("topology: 'create'");
  }, 30_000);

  it('verify mode at connect: a missing topic fails the connect, naming it', async () => {
    const topic = uniqueTopic('missing');
    const err = await rejectedMqError(openKafka({ topology: 'verify', topics: [{ topic, groups: ['billing'] }] }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain(`topic "${topic}" does not exist`);
  }, 30_000);

  it("default mode ('none'): subscribe to a missing topic fails with NOT_FOUND naming it, the declare call and createTopics", async () => {
    const client = await openKafka({ options: { createTopics: false } });
    expect(client.topology).toBe('none');
    const topic = uniqueTopic('missing');
    const err = await rejectedMqError(client.subscribe(topic, { group: 'billing', handler: () => {}, options: { joinTimeoutMs: 10_000 } }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain(`topic "${topic}" does not exist`);
    expect(err.message).toContain(`client.declare({ topic: '${topic}', groups: ['billing'] })`);
    expect(err.message).toContain('createTopics=true');
  }, 60_000);
});
