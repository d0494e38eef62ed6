import { MqError, isConnectionErrno } from '@mqkit/core/driver';
import { AuthenticationError, MultipleErrors, NetworkError, ProtocolError, ResponseError, TimeoutError, UnsupportedApiError, UserError } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { classifyPlatformaticError, protocolErrorId } from './platformatic-errors.ts';

describe('classifyPlatformaticError', () => {
  it('retries exhausted around a connection loss is a retryable CONNECTION', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9092'), { code: 'ECONNREFUSED' });
    expect(isConnectionErrno('ECONNREFUSED')).toBe(true);
    const network = new NetworkError('Connection to 127.0.0.1:9092 failed.', { cause: refused });
    const mq = classifyPlatformaticError(new MultipleErrors('Cannot connect to any broker.', [network, network]));
    expect(mq.code).toBe('CONNECTION');
    expect(mq.retryable).toBe(true);
  });

  it.each([
    ['MESSAGE_TOO_LARGE', 'TOO_LARGE', false],
    ['UNKNOWN_TOPIC_OR_PARTITION', 'NOT_FOUND', false],
    ['TOPIC_AUTHORIZATION_FAILED', 'AUTH', false],
    ['NOT_ENOUGH_REPLICAS', 'NOT_CONFIRMED', true],
    ['NOT_LEADER_OR_FOLLOWER', 'CONNECTION', true],
    ['INVALID_PRODUCER_EPOCH', 'NOT_CONFIRMED', true],
    ['PRODUCER_FENCED', 'REJECTED', false],
  ])('a broker answer %s inside a response error is %s (retryable %s)', (id, code, retryable) => {
    const err = new ResponseError(0, 9, { '/topics/0/partitions/0': [new ProtocolError(id).apiCode as number, null] }, {});
    expect(protocolErrorId(err)).toBe(id);
    const mq = classifyPlatformaticError(err, { topic: 't' });
    expect(mq.code).toBe(code);
    expect(mq.retryable).toBe(retryable);
    expect(mq.details).toMatchObject({ topic: 't', kafkaError: id });
  });

  it('an unlisted protocol error goes by the library’s canRetry', () => {
    expect(classifyPlatformaticError(new ProtocolError('OFFSET_NOT_AVAILABLE')).retryable).toBe(new ProtocolError('OFFSET_NOT_AVAILABLE').canRetry);
    expect(classifyPlatformaticError(new ProtocolError('INVALID_CONFIG')).code).toBe('REJECTED');
  });

  it('authentication, timeouts and unsupported APIs', () => {
    expect(classifyPlatformaticError(new AuthenticationError('SASL authentication failed')).code).toBe('AUTH');
    const timeout = classifyPlatformaticError(new TimeoutError('Request timed out'));
    expect([timeout.code, timeout.retryable]).toEqual(['TIMEOUT', true]);
    expect(classifyPlatformaticError(new UnsupportedApiError('Unsupported API Produce.')).code).toBe('UNSUPPORTED');
  });

  it('consuming a topic the cluster does not know is NOT_FOUND', () => {
    const mq = classifyPlatformaticError(new UserError('Unknown topic orders.'));
    expect([mq.code, mq.retryable]).toEqual(['NOT_FOUND', false]);
  });

  it('anything else is INTERNAL; an MqError passes through', () => {
    const mq = classifyPlatformaticError(new UserError('bad option'));
    expect([mq.code, mq.retryable]).toEqual(['INTERNAL', false]);
    const own = new MqError('CLOSED', 'closed');
    expect(classifyPlatformaticError(own)).toBe(own);
  });
});
