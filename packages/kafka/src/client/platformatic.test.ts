/**
 * The parts of the @platformatic/kafka seam that need no broker: partitioning (the same as
 * kafkajs', so that both clients put a key on the same partition) and the client options.
 */
import { describe, expect, it } from 'vitest';
import { parseKafkaUrl } from '../options.ts';
import { stablePartitioner } from './kafkajs-producer.ts';
import { platformaticBaseOptions, stablePartition } from './platformatic.ts';

const partitionMetadata = Array.from({ length: 12 }, (_, partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], offlineReplicas: [], partitionErrorCode: 0 }));

describe('stablePartition', () => {
  it('puts a key on the same partition as kafkajs (Java murmur2)', () => {
    const kafkajs = stablePartitioner();
    for (const key of ['customer-7', 'a', 'order-12345', 'ü']) {
      const ours = stablePartition({ topic: 't', key: Buffer.from(key) }, Buffer.from(key)) % 12;
      expect(ours).toBe(kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } }));
    }
  });

  it('hashes keyless records by their mqkit id, as kafkajs does, the same on every call', () => {
    const kafkajs = stablePartitioner();
    const message = { topic: 't', headers: { 'x-mqkit-id': 'order-1' } };
    const first = stablePartition(message, undefined);
    for (let i = 0; i < 5; i += 1) expect(stablePartition(message, undefined)).toBe(first);
    expect(first % 12).toBe(kafkajs({ topic: 't', partitionMetadata, message: { key: null, value: null, headers: { 'x-mqkit-id': 'order-1' } } }));
  });
});

describe('platformaticBaseOptions', () => {
  it('maps brokers, timeouts, retries, SASL and TLS from the adapter options', () => {
    const s = parseKafkaUrl('kafka://alice:secret@h1:9092,h2:9093?saslMechanism=scram-sha-256&ssl=true&clientId=orders&retries=3&maxRetryTime=400', {});
    const o = platformaticBaseOptions(s);
    expect(o).toMatchObject({
      clientId: 'orders',
      bootstrapBrokers: ['h1:9092', 'h2:9093'],
      connectTimeout: 3_000,
      requestTimeout: 30_000,
      retries: 3,
      tls: {},
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'alice', password: 'secret' },
    });
    const delay = o.retryDelay as (c: object, op: string, attempt: number) => number;
    expect([1, 2, 3, 10].map((a) => delay({}, 'op', a))).toEqual([100, 200, 400, 400]);
  });

  it('plain TCP without credentials; TLS options passed through', () => {
    expect(platformaticBaseOptions(parseKafkaUrl('kafka://h1:9092', {}))).not.toHaveProperty('tls');
    expect(platformaticBaseOptions(parseKafkaUrl('kafka://h1:9092', {}))).not.toHaveProperty('sasl');
    expect(platformaticBaseOptions(parseKafkaUrl('kafka://h1:9092', { ssl: { rejectUnauthorized: false, servername: 'k' } })).tls).toEqual({ rejectUnauthorized: false, servername: 'k' });
  });
});
