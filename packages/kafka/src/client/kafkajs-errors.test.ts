import { MqError } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { classifyKafkaError } from './kafkajs-errors.ts';

function named(name: string, message: string, extra: Record<string, unknown> = {}): Error {
  const e = new Error(message);
  Object.assign(e, { name, ...extra });
  return e;
}

describe('classifyKafkaError', () => {
  it('a non-retriable wrapper around a connection error is a retryable CONNECTION', () => {
    const cause = named('KafkaJSConnectionError', 'Connection error: connect ECONNREFUSED 127.0.0.1:9092', { retriable: true });
    const err = named('KafkaJSNonRetriableError', 'Connection error: connect ECONNREFUSED', { retriable: false, cause });
    const mq = classifyKafkaError(err);
    expect(mq.code).toBe('CONNECTION');
    expect(mq.retryable).toBe(true);
    expect(mq.cause).toBe(err);
  });

  it('retries exhausted around a retriable protocol error keeps its meaning', () => {
    const cause = named('KafkaJSProtocolError', 'Not enough in-sync replicas', { type: 'NOT_ENOUGH_REPLICAS', retriable: true });
    const mq = classifyKafkaError(named('KafkaJSNumberOfRetriesExceeded', 'retries exceeded', { cause }));
    expect(mq.code).toBe('NOT_CONFIRMED');
    expect(mq.retryable).toBe(true);
    expect(mq.details.kafkaError).toBe('NOT_ENOUGH_REPLICAS');
  });

  it.each([
    ['MESSAGE_TOO_LARGE', 'TOO_LARGE', false],
    ['RECORD_LIST_TOO_LARGE', 'TOO_LARGE', false],
    ['TOPIC_AUTHORIZATION_FAILED', 'AUTH', false],
    ['UNKNOWN_TOPIC_OR_PARTITION', 'NOT_FOUND', false],
    ['INVALID_TOPIC_EXCEPTION', 'INVALID_MESSAGE', false],
    ['NOT_LEADER_FOR_PARTITION', 'CONNECTION', true],
    ['REQUEST_TIMED_OUT', 'TIMEOUT', true],
  ] as const)('protocol error %s → %s', (type, code, retryable) => {
    const mq = classifyKafkaError(named('KafkaJSProtocolError', type, { type, retriable: retryable }));
    expect(mq.code).toBe(code);
    expect(mq.retryable).toBe(retryable);
  });

  it('SASL failures are AUTH and not retryable', () => {
    const mq = classifyKafkaError(named('KafkaJSSASLAuthenticationError', 'SASL PLAIN authentication failed'));
    expect(mq.code).toBe('AUTH');
    expect(mq.retryable).toBe(false);
  });

  it('request timeouts are retryable TIMEOUT', () => {
    expect(classifyKafkaError(named('KafkaJSRequestTimeoutError', 'Request Produce timed out')).code).toBe('TIMEOUT');
  });

  it('unknown errors are INTERNAL, retryable only when kafkajs says so', () => {
    expect(classifyKafkaError(new Error('boom')).code).toBe('INTERNAL');
    expect(classifyKafkaError(new Error('boom')).retryable).toBe(false);
    expect(classifyKafkaError(named('KafkaJSError', 'odd', { retriable: true })).retryable).toBe(true);
  });

  it('passes MqErrors through', () => {
    const e = new MqError('CLOSED', 'closed');
    expect(classifyKafkaError(e)).toBe(e);
  });
});
