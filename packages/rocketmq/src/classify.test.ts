import { MqError } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { classify, classifyResponseCode } from './classify.ts';

const clientException = (code: number, message: string): Error => Object.assign(new Error(`[request-id=x, response-code=${code}] ${message}`), { code, name: 'NotFoundException' });
const grpcError = (code: number, details: string): Error => Object.assign(new Error(`${code} ${details}`), { code, details, metadata: {} });

describe('classify', () => {
  it('maps a proxy outage to a retryable CONNECTION error', () => {
    const err = classify(grpcError(14, 'UNAVAILABLE: No connection established. connect ECONNREFUSED 127.0.0.1:8081'));
    expect(err.code).toBe('CONNECTION');
    expect(err.retryable).toBe(true);
  });

  it('maps a raw socket error (by code or named in its text) to a retryable CONNECTION error', () => {
    expect(classify(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })).code).toBe('CONNECTION');
    expect(classify(new Error('getaddrinfo ENOTFOUND proxy')).code).toBe('CONNECTION');
  });

  it('maps deadlines to retryable TIMEOUT', () => {
    expect(classify(grpcError(4, 'DEADLINE_EXCEEDED')).code).toBe('TIMEOUT');
  });

  it('maps a missing topic to NOT_FOUND, also through the client startup wrappers', () => {
    const missing = clientException(40402, 'No topic route info in name server for the topic: nope');
    expect(classify(missing).code).toBe('NOT_FOUND');
    const wrapped = new Error('Startup the rocketmq client failed, clientId=x, error=...', {
      cause: new Error('Failed to fetch topic routes after 3 attempts', { cause: missing }),
    });
    const err = classify(wrapped, { topic: 'nope' });
    expect(err.code).toBe('NOT_FOUND');
    expect(err.retryable).toBe(false);
    expect(err.details).toMatchObject({ topic: 'nope', nativeCode: 40402 });
  });

  it('maps a wrong message type to REJECTED and an oversize body to TOO_LARGE', () => {
    expect(classify(new TypeError('Current message type not match with topic accept message types, topic=t, actualMessageType=1, acceptMessageTypes=[2]')).code).toBe('REJECTED');
    expect(classify(new TypeError('Message body size exceeds the threshold, max size=4194304 bytes')).code).toBe('TOO_LARGE');
  });

  it('treats server-side internal errors and throttling as retryable', () => {
    expect(classify(clientException(50001, 'service not available now')).retryable).toBe(true);
    expect(classify(clientException(42900, 'too many requests')).retryable).toBe(true);
    expect(classify(clientException(50401, 'flush timeout')).code).toBe('TIMEOUT');
  });

  it('passes MqErrors through', () => {
    const original = new MqError('CLOSED', 'closed');
    expect(classify(original)).toBe(original);
  });

  it('keeps the native error as cause', () => {
    const native = grpcError(16, 'UNAUTHENTICATED');
    const err = classify(native);
    expect(err.code).toBe('AUTH');
    expect(err.cause).toBe(native);
  });
});

describe('classifyResponseCode', () => {
  it.each([
    [40100, 'AUTH', false],
    [40300, 'AUTH', false],
    [40403, 'NOT_FOUND', false],
    [41301, 'TOO_LARGE', false],
    [43101, 'TOO_LARGE', false],
    [40007, 'REJECTED', false],
    [50000, 'NOT_CONFIRMED', true],
    [50100, 'UNSUPPORTED', false],
    [50400, 'TIMEOUT', true],
  ] as const)('%i → %s', (code, expected, retryable) => {
    expect(classifyResponseCode(code)).toEqual({ code: expected, retryable });
  });
});
