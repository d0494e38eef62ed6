/**
 * A dead-letter publish that fails (#16 defect 3) must not leave the message unsettled: on Kafka
 * that froze the partition's committed offset and, on ordered subscriptions, blocked the key for
 * good. Core retries the dead-letter publish, then hands the message back with a delay; the
 * adapter holds it and redelivers it (past maxAttempts, so core dead-letters it again, unhandled)
 * until the dead-letter topic takes it. The failure is made real on the broker: the DLQ topic's
 * `max.message.bytes` is set too small (the local broker auto-creates missing topics, so a missing
 * DLQ would not fail here), then raised.
 */
import { nativeGroupId, classifyKafkaError } from '@mqkit/kafka';
import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueGroup, uniqueTopic } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';
import { brokers, closeAll, createTopic, openKafka } from './harness.ts';

const raw = new Kafka({ clientId: 'mqkit-it-dlq', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
const admin = raw.admin();

afterAll(async () => {
  await closeAll();
  await admin.disconnect().catch(() => {});
});

async function setMaxMessageBytes(topic: string, bytes: number): Promise<void> {
  await admin.alterConfigs({
    validateOnly: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'max.message.bytes', value: String(bytes) }] }],
  });
}

describe('kafka: a failing dead-letter publish', () => {
  it('keeps the message retried (never unsettled); once the DLQ takes it, the key and the committed offset move on', async () => {
    await admin.connect();
    const topic = await createTopic('dlq-fails', 1);
    const dlq = `${topic}-dlq`;
    await setMaxMessageBytes(dlq, 64); // no record batch fits
    const errors: string[] = [];
    const logger = {
      debug() {},
      info() {},
      warn() {},
      error: (o: object, m?: string) => errors.push(`${m} ${(o as { err?: { code?: string } }).err?.code ?? ''}`),
    };
    const client = await openKafka({ logger });
    const group = uniqueGroup('dlq-fails');
    const handled: string[] = [];
    const badRuns: number[] = [];
    await client.subscribe<{ n: string }>(topic, {
      group,
      ordered: true,
      retry: { maxAttempts: 1, initialDelayMs: 200, maxDelayMs: 500 },
      handler: (d) => {
        if (d.payload.n === 'bad') {
          badRuns.push(d.attempt);
          throw new Error('cannot handle bad');
        }
        handled.push(d.payload.n);
      },
    });
    await client.publish(topic, { n: 'bad' }, { key: 'k' });
    await client.publish(topic, { n: 'next' }, { key: 'k' });
    await client.publish(topic, { n: 'other' }, { key: 'j' });

    await waitFor('the other key to be handled', () => handled.includes('other'), { timeoutMs: 30_000 });
    await waitFor('two failed dead-letter publishes logged', () => errors.filter((e) => /dead-letter publish failed/.test(e)).length >= 2, { timeoutMs: 30_000 });
    expect(errors.find((e) => /dead-letter publish failed/.test(e))).toMatch(/TOO_LARGE/);
    expect(handled).not.toContain('next'); // its key waits behind 'bad' (order kept)
    expect(badRuns).toEqual([1]); // redeliveries past maxAttempts go to the DLQ unhandled

    await setMaxMessageBytes(dlq, 1_048_588);
    const dead: string[] = [];
    const reader = await openKafka();
    await reader.subscribe<{ n: string }>(dlq, { group: uniqueGroup('dlq-reader'), handler: (d) => void dead.push(d.payload.n) });
    await waitFor('the message in the DLQ', () => dead.includes('bad'), { timeoutMs: 60_000 });
    await waitFor('the key to move on', () => handled.includes('next'), { timeoutMs: 30_000 });
    expect(badRuns).toEqual([1]);
    // The committed offset passes all three records.
    await waitFor(
      'the committed offset at 3',
      async () => {
        const [offsets] = await admin.fetchOffsets({ groupId: nativeGroupId(group, topic), topics: [topic] });
        return offsets?.partitions.find((p) => p.partition === 0)?.offset === '3';
      },
      { timeoutMs: 30_000 },
    );
    expect(dead).toEqual(['bad']);
  }, 180_000);

  it('a publish to a topic that does not exist (no auto-creation) fails as NOT_FOUND, not retryable', async () => {
    const producer = raw.producer({ allowAutoTopicCreation: false, retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 } });
    await producer.connect();
    try {
      const err = await producer.send({ topic: uniqueTopic('missing'), messages: [{ value: 'x' }] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeDefined();
      const mq = classifyKafkaError(err);
      expect(mq.code).toBe('NOT_FOUND');
      expect(mq.retryable).toBe(false);
    } finally {
      await producer.disconnect();
    }
    await sleep(0);
  }, 60_000);
});
