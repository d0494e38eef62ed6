/**
 * Raw kafkajs 2.2.4 against the real broker: proves the broker (and the client features the
 * adapter relies on) before any mqkit code is involved.
 */
import { type Admin, type Consumer, Kafka, type KafkaMessage, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaBrokerList, requireBroker } from '../src/endpoints.ts';
import { uniqueGroup, uniqueName, uniqueTopic } from '../src/names.ts';
import { waitFor } from '../src/wait.ts';

const brokers = kafkaBrokerList(requireBroker('kafka'));
const kafka = new Kafka({
  clientId: uniqueName('raw-kafkajs'),
  brokers,
  // Connection retries come from the client level (5 by default), not the producer's `retry`.
  retry: { retries: 15 },
  logLevel: logLevel.NOTHING,
});

const topic = uniqueTopic('raw-kafkajs');
const txTopic = uniqueTopic('raw-kafkajs-tx');
let admin: Admin;
const cleanups: Array<() => Promise<unknown>> = [];

interface Seen {
  partition: number;
  offset: string;
  key: string;
  value: string;
}

/** Consumes `topic` with a fresh group (autoCommit off), committing offset+1 after each message. */
async function consumeAndCommit(groupId: string, want: number, opts: { fromBeginning: boolean }): Promise<{ seen: Seen[]; consumer: Consumer }> {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 250 });
  cleanups.push(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: opts.fromBeginning });
  const seen: Seen[] = [];
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      seen.push({ partition, offset: message.offset, key: message.key!.toString(), value: message.value!.toString() });
      // Raw commitOffsets wants the NEXT offset to read: offset + 1.
      await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
    },
  });
  await waitFor(`${want} messages on ${topic} (group ${groupId})`, () => seen.length >= want, { timeoutMs: 60_000 });
  return { seen, consumer };
}

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic, numPartitions: 3, replicationFactor: 1 },
      // one partition, so "the marker after the aborted batch was read" means everything before it was read
      { topic: txTopic, numPartitions: 1, replicationFactor: 1 },
    ],
  });
  expect(created).toBe(true);
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  if (admin) {
    await admin.deleteTopics({ topics: [topic, txTopic] }).catch(() => {});
    await admin.disconnect();
  }
});

describe('kafkajs raw client', () => {
  it('admin created the topic with 3 partitions', async () => {
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(md.topics).toHaveLength(1);
    expect(md.topics[0]!.partitions).toHaveLength(3);
    for (const p of md.topics[0]!.partitions) expect(p.leader).toBeGreaterThanOrEqual(0);
  });

  it('idempotent producer (acks -1) + manual commits: keyed order per partition, committed offsets resume the group', async () => {
    const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
    cleanups.push(() => producer.disconnect());
    await producer.connect();

    const keys = ['k0', 'k1', 'k2', 'k3', 'k4'];
    const perKey = 6;
    const messages = [];
    for (let i = 0; i < perKey; i++) for (const key of keys) messages.push({ key, value: `${key}:${i}` });
    const meta = await producer.send({ topic, acks: -1, messages });
    expect(meta.length).toBeGreaterThan(0);
    for (const m of meta) expect(m.errorCode).toBe(0);

    const groupId = uniqueGroup('raw-kafkajs');
    const first = await consumeAndCommit(groupId, messages.length, { fromBeginning: true });
    // give the consumer a moment to prove there is nothing extra (no duplicates)
    await new Promise((r) => setTimeout(r, 1000));
    expect(first.seen).toHaveLength(messages.length);

    // same key => same partition, in send order
    for (const key of keys) {
      const mine = first.seen.filter((s) => s.key === key);
      expect(mine.map((s) => s.value)).toEqual(Array.from({ length: perKey }, (_, i) => `${key}:${i}`));
      expect(new Set(mine.map((s) => s.partition)).size).toBe(1);
    }
    await first.consumer.disconnect();

    // committed offsets == high watermarks (the commit of offset+1 covered every message)
    const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
    const high = await admin.fetchTopicOffsets(topic);
    const byPartition = new Map(high.map((h) => [h.partition, h.high]));
    const parts = committed[0]!.partitions;
    expect(parts).toHaveLength(3);
    for (const p of parts) expect(p.offset).toBe(byPartition.get(p.partition));

    // a new member of the same group resumes after the commits: it sees only the new message
    await producer.send({ topic, acks: -1, messages: [{ key: 'k0', value: 'after-commit' }] });
    const second = await consumeAndCommit(groupId, 1, { fromBeginning: true });
    await new Promise((r) => setTimeout(r, 1000));
    expect(second.seen.map((s) => s.value)).toEqual(['after-commit']);
    await second.consumer.disconnect();
  });

  it('transactions: read_committed sees the committed transactions only, read_uncommitted also the aborted one', async () => {
    const producer = kafka.producer({ transactionalId: uniqueName('raw-kafkajs-tx'), idempotent: true, maxInFlightRequests: 1 });
    cleanups.push(() => producer.disconnect());
    await producer.connect();

    const committed = await producer.transaction();
    await committed.send({ topic: txTopic, acks: -1, messages: [{ key: 'a', value: 'committed-1' }, { key: 'b', value: 'committed-2' }] });
    await committed.commit();

    const aborted = await producer.transaction();
    await aborted.send({ topic: txTopic, acks: -1, messages: [{ key: 'a', value: 'aborted-1' }, { key: 'b', value: 'aborted-2' }] });
    await aborted.abort();

    const marker = await producer.transaction();
    await marker.send({ topic: txTopic, acks: -1, messages: [{ key: 'm', value: 'committed-marker' }] });
    await marker.commit();

    const readAll = async (readUncommitted: boolean): Promise<string[]> => {
      const consumer = kafka.consumer({ groupId: uniqueGroup('raw-kafkajs-tx'), readUncommitted, maxWaitTimeInMs: 250 });
      cleanups.push(() => consumer.disconnect());
      await consumer.connect();
      await consumer.subscribe({ topic: txTopic, fromBeginning: true });
      const values: string[] = [];
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ message }: { message: KafkaMessage }) => {
          values.push(message.value!.toString());
        },
      });
      // single partition: once the marker (written last) arrived, everything before it was delivered
      await waitFor('the committed marker', () => values.includes('committed-marker'), { timeoutMs: 60_000 });
      await consumer.disconnect();
      return values;
    };

    expect(await readAll(false)).toEqual(['committed-1', 'committed-2', 'committed-marker']);
    expect(await readAll(true)).toEqual(['committed-1', 'committed-2', 'aborted-1', 'aborted-2', 'committed-marker']);
  });
});
