import { MqError } from '@mqkit/core/driver';
import { thrownMqError } from '@mqkit/testing/conformance';
import { describe, expect, it } from 'vitest';
import type { KafkaClientSeam } from './client/seam.ts';
import { KafkaDriver } from './driver.ts';
import { parseKafkaUrl, safeUrlForErrors } from './options.ts';

const configErrorOf = (fn: () => unknown) => thrownMqError(fn, 'CONFIG');

describe('parseKafkaUrl', () => {
  it('picks the client library and group protocol from the URL or the typed options', () => {
    const d = parseKafkaUrl('kafka://h1:9092', {});
    expect(d.client).toBe('kafkajs');
    expect(d.groupProtocol).toBe('classic');
    expect(parseKafkaUrl('kafka://h1:9092?client=platformatic&groupProtocol=consumer', {})).toMatchObject({ client: 'platformatic', groupProtocol: 'consumer' });
    expect(parseKafkaUrl('kafka://h1:9092?client=platformatic', { client: 'kafkajs' }).client).toBe('kafkajs');
    expect(configErrorOf(() => parseKafkaUrl('kafka://h1:9092?client=rdkafka', {})).message).toMatch(/client/);
    expect(configErrorOf(() => parseKafkaUrl('kafka://h1:9092', { groupProtocol: 'eager' })).message).toMatch(/groupProtocol/);
  });

  it('takes several brokers and applies the defaults', () => {
    const s = parseKafkaUrl('kafka://h1:9092,h2:9093', {});
    expect(s.brokers).toEqual(['h1:9092', 'h2:9093']);
    expect(s.clientId).toBe('mqkit');
    expect(s.ssl).toBe(false);
    expect(s.sasl).toBeUndefined();
    expect(s.retries).toBe(5);
    expect(s.maxBatchSize).toBe(500);
    expect(s.createTopics).toBe(false);
  });

  it('reads query options and lets explicit options win', () => {
    const s = parseKafkaUrl('kafka://h1:9092/?clientId=orders&ssl=true&maxBatchSize=100', { maxBatchSize: 50 });
    expect(s.clientId).toBe('orders');
    expect(s.ssl).toBe(true);
    expect(s.maxBatchSize).toBe(50);
  });

  it('turns URL credentials into SASL with the chosen mechanism', () => {
    const s = parseKafkaUrl('kafka://alice:s%40cret@h1:9092?saslMechanism=scram-sha-512', {});
    expect(s.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'alice', password: 's@cret' });
  });

  it('accepts SASL and TLS objects as options', () => {
    const s = parseKafkaUrl('kafka://h1:9092', {
      sasl: { mechanism: 'plain', username: 'u', password: 'p' },
      ssl: { rejectUnauthorized: false },
    });
    expect(s.sasl?.mechanism).toBe('plain');
    expect(s.ssl).toEqual({ rejectUnauthorized: false });
  });

  it('rejects a URL without brokers or with a bad host:port', () => {
    configErrorOf(() => parseKafkaUrl('kafka://', {}));
    configErrorOf(() => parseKafkaUrl('kafka://h1', {}));
    configErrorOf(() => parseKafkaUrl('kafka://h1:99999', {}));
    configErrorOf(() => parseKafkaUrl('amqp://h1:9092', {}));
  });

  it('rejects unknown and invalid options by name, never echoing secret values', () => {
    const err = configErrorOf(() => parseKafkaUrl('kafka://bob:hunter2@h1:9092?retries=abc&nope=1', {}));
    expect(err.message).toContain('retries');
    expect(err.message).not.toContain('hunter2');
    expect(JSON.stringify(err.details)).not.toContain('hunter2');
    const bad = configErrorOf(() => parseKafkaUrl('kafka://h1:9092', { sasl: { mechanism: 'md5', username: 'u', password: 'topsecret' } }));
    expect(bad.message).not.toContain('topsecret');
  });

  it('redacts passwords in URLs used for errors', () => {
    expect(safeUrlForErrors('kafka://bob:hunter2@h1:9092,h2:9092?clientId=x')).toBe('kafka://bob:hunter2@h1:9092?clientId=x');
    const err = configErrorOf(() => parseKafkaUrl('kafka://bob:hunter2@', {}));
    expect(err.message).not.toContain('hunter2');
  });
});

describe('kafka subscription options (#16 defect 8)', () => {
  const seam = { classify: (e: unknown) => e, consumer: () => { throw new Error('no consumer expected'); } } as unknown as KafkaClientSeam;
  const producer = { send: async () => [], disconnect: async () => {} };
  const silent = { debug() {}, info() {}, warn() {}, error() {} };
  const driver = new KafkaDriver(seam, producer, parseKafkaUrl('kafka://h1:9092', {}), silent);
  const spec = { topic: 't', group: 'g', maxInFlight: 8, ordered: false, maxAttempts: 5, deadLetterTopic: 't-dlq' };
  const subscribeError = (options: Record<string, unknown>) =>
    driver.receiver({ ...spec, options }).then(
      () => expect.fail('receiver should reject'),
      (err: unknown) => err as MqError,
    );

  it.each([
    ['a misspelt option', { sessionTimeuot: 10_000 }, 'sessionTimeuot'],
    ['NaN', { maxBufferedMessages: Number.NaN }, 'maxBufferedMessages'],
    ['a negative count', { maxBufferedMessages: -100 }, 'maxBufferedMessages'],
    ['a string for a number', { sessionTimeout: '10s' }, 'sessionTimeout'],
    ['a number as text', { commitIntervalMs: '20' }, 'commitIntervalMs'],
    ['a fraction', { heartbeatInterval: 1.5 }, 'heartbeatInterval'],
    ['a string for a boolean', { fromBeginning: 'yes' }, 'fromBeginning'],
  ])('rejects %s with CONFIG naming the field', async (_label, options, field) => {
    const err = await subscribeError(options);
    expect(err).toBeInstanceOf(MqError);
    expect(err.code).toBe('CONFIG');
    expect(err.message).toContain('kafka subscribe options');
    expect(err.message).toContain(field);
    expect(err.message).toMatch(new RegExp(`kafka subscribe options(\\.${field}:|: Unrecognized key: "${field}")`));
  });

  it('connect options: an unknown key alone is a CONFIG error naming it', () => {
    expect(configErrorOf(() => parseKafkaUrl('kafka://h1:9092', { concurrancy: 4 })).message).toContain('concurrancy');
  });
});
