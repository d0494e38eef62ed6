/**
 * The serial idempotent producer against a scripted kafkajs producer: one request at a time,
 * queued sends merged, the producer replaced after a failed request, keyless records partitioned
 * by their mqkit id (stable across retries).
 */
import { CompressionTypes, type Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { MqError } from '@mqkit/core/driver';
import { envelopeBatch } from '../records.ts';
import { SerialIdempotentProducer, stablePartitioner } from './kafkajs-producer.ts';

const silent = { debug() {}, info() {}, warn() {}, error() {} };

interface Call {
  producer: number;
  topics: Array<{ topic: string; count: number }>;
}

function scriptedKafka(fail: (call: number) => boolean) {
  const calls: Call[] = [];
  let producers = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const kafka = {
    producer: () => {
      const id = (producers += 1);
      return {
        connect: async () => {},
        disconnect: async () => {},
        sendBatch: async ({ topicMessages }: { topicMessages: Array<{ topic: string; messages: unknown[] }> }) => {
          inFlight += 1;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await new Promise((r) => setTimeout(r, 5));
          inFlight -= 1;
          calls.push({ producer: id, topics: topicMessages.map((t) => ({ topic: t.topic, count: t.messages.length })) });
          if (fail(calls.length)) throw Object.assign(new Error('Connection error'), { name: 'KafkaJSConnectionError' });
          return topicMessages.map((t) => ({ topicName: t.topic, partition: 0, errorCode: 0, baseOffset: '0' }));
        },
      };
    },
  } as unknown as Kafka;
  return { kafka, calls, stats: () => ({ producers, maxInFlight }) };
}

const records = (n: number) => envelopeBatch(Array.from({ length: n }, (_, i) => ({ id: `m${i}`, topic: 't', headers: {}, body: new Uint8Array([i]), timestamp: 1 })), 1);

describe('SerialIdempotentProducer', () => {
  it('sends one request at a time and merges what queued meanwhile', async () => {
    const { kafka, calls, stats } = scriptedKafka(() => false);
    const producer = new SerialIdempotentProducer(kafka, {}, CompressionTypes.None, silent);
    await producer.connect();
    await Promise.all([producer.send('a', records(2)), producer.send('a', records(3)), producer.send('b', records(1))]);
    expect(stats().maxInFlight).toBe(1);
    expect(calls).toHaveLength(2);
    expect(calls[0]!.topics).toEqual([{ topic: 'a', count: 2 }]);
    expect(calls[1]!.topics).toEqual([
      { topic: 'a', count: 3 },
      { topic: 'b', count: 1 },
    ]);
  });

  it('replaces the producer after a failed request and fails every send merged into it', async () => {
    const { kafka, calls, stats } = scriptedKafka((n) => n === 1);
    const producer = new SerialIdempotentProducer(kafka, {}, CompressionTypes.None, silent);
    await producer.connect();
    const first = producer.send('a', records(1));
    await expect(first).rejects.toThrow('Connection error');
    await new Promise((r) => setImmediate(r)); // past the fail-stop turn
    await producer.send('a', records(1));
    expect(stats().producers).toBe(2);
    expect(calls.map((c) => c.producer)).toEqual([1, 2]);
  });

  it('fails, unsent and retryable, what queued behind a failed request and what comes in the same turn', async () => {
    const { kafka, calls } = scriptedKafka((n) => n === 1);
    const producer = new SerialIdempotentProducer(kafka, {}, CompressionTypes.None, silent);
    await producer.connect();
    const first = producer.send('a', records(1));
    const queued = producer.send('a', records(2));
    const settled = await Promise.allSettled([first, queued]);
    // Same turn as the failure (core booking it): refused without a request.
    const late = await producer.send('a', records(1)).catch((e: unknown) => e);
    expect(settled.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    const behind = (settled[1] as PromiseRejectedResult).reason as MqError;
    expect(MqError.is(behind, 'NOT_CONFIRMED')).toBe(true);
    expect(behind.retryable).toBe(true);
    expect(MqError.is(late, 'NOT_CONFIRMED') && (late).retryable).toBe(true);
    expect(calls).toHaveLength(1);
    await new Promise((r) => setImmediate(r));
    await producer.send('a', records(1));
    expect(calls).toHaveLength(2);
  });

  it('splits one oversized send into several requests, in order', async () => {
    const { kafka, calls } = scriptedKafka(() => false);
    const producer = new SerialIdempotentProducer(kafka, {}, CompressionTypes.None, silent);
    const big = Array.from({ length: 3 }, (_, i) => ({ id: `b${i}`, topic: 't', headers: {}, body: new Uint8Array(400 * 1024), timestamp: 1 }));
    await producer.send('t', envelopeBatch(big, 1));
    expect(calls.map((c) => c.topics[0]!.count)).toEqual([2, 1]);
  });
});

describe('stablePartitioner', () => {
  const partitionMetadata = [0, 1, 2].map((partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], offlineReplicas: [], partitionErrorCode: 0 }));

  it('hashes keyless records by their mqkit id, the same on every call', () => {
    const partition = stablePartitioner();
    const message = { key: null, value: Buffer.from('x'), headers: { 'x-mqkit-id': 'order-1' } };
    const first = partition({ topic: 't', partitionMetadata, message });
    for (let i = 0; i < 10; i += 1) expect(partition({ topic: 't', partitionMetadata, message })).toBe(first);
  });

  it('keeps the murmur2 key partitioning for keyed records', () => {
    const partition = stablePartitioner();
    const a = partition({ topic: 't', partitionMetadata, message: { key: 'customer-7', value: Buffer.from('x'), headers: { 'x-mqkit-id': 'a' } } });
    const b = partition({ topic: 't', partitionMetadata, message: { key: 'customer-7', value: Buffer.from('y'), headers: { 'x-mqkit-id': 'b' } } });
    expect(a).toBe(b);
  });
});
