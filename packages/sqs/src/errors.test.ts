import { MqError } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { classifyAwsError, classifyBatchFailure, classifyDeclareError } from './errors.ts';

function awsError(name: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} happened`), { name, ...extra });
}

describe('classifyAwsError', () => {
  it.each([
    ['QueueDoesNotExist', 'NOT_FOUND', false],
    ['AWS.SimpleQueueService.NonExistentQueue', 'NOT_FOUND', false],
    ['NotFound', 'NOT_FOUND', false],
    ['InvalidClientTokenId', 'AUTH', false],
    ['AccessDenied', 'AUTH', false],
    ['BatchRequestTooLong', 'TOO_LARGE', false],
    ['InvalidMessageContents', 'INVALID_MESSAGE', false],
    ['ThrottlingException', 'NOT_CONFIRMED', true],
    ['RequestThrottled', 'NOT_CONFIRMED', true],
    ['InternalError', 'NOT_CONFIRMED', true],
  ])('%s → %s (retryable %s)', (name, code, retryable) => {
    const err = classifyAwsError(awsError(name), 'op');
    expect(err.code).toBe(code);
    expect(err.retryable).toBe(retryable);
    expect(err.message).toContain(name);
  });

  it('treats network failures as retryable connection errors', () => {
    const refused = classifyAwsError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9324'), { code: 'ECONNREFUSED' }), 'op');
    expect(refused.code).toBe('CONNECTION');
    expect(refused.retryable).toBe(true);
    const nested = classifyAwsError(new Error('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }) }), 'op');
    expect(nested.code).toBe('CONNECTION');
    const aggregate = classifyAwsError(new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })], ''), 'op');
    expect(aggregate.code).toBe('CONNECTION');
    expect(classifyAwsError(new Error('socket hang up'), 'op').code).toBe('CONNECTION');
  });

  it('treats timeouts and aborted requests (the adapter aborts only at its deadlines) as retryable TIMEOUT', () => {
    for (const name of ['TimeoutError', 'AbortError']) {
      const t = classifyAwsError(awsError(name), 'op');
      expect(t.code).toBe('TIMEOUT');
      expect(t.retryable).toBe(true);
    }
  });

  it('falls back on the HTTP status and fault', () => {
    expect(classifyAwsError(awsError('Weird', { $metadata: { httpStatusCode: 503 } }), 'op')).toMatchObject({ code: 'NOT_CONFIRMED', retryable: true });
    expect(classifyAwsError(awsError('Weird', { $metadata: { httpStatusCode: 403 } }), 'op').code).toBe('AUTH');
    expect(classifyAwsError(awsError('Weird', { $fault: 'client', $metadata: { httpStatusCode: 400 } }), 'op').code).toBe('REJECTED');
    expect(classifyAwsError(awsError('Weird'), 'op').code).toBe('INTERNAL');
  });

  it('passes MqErrors through', () => {
    const original = new MqError('CLOSED', 'closed');
    expect(classifyAwsError(original, 'op')).toBe(original);
  });
});

describe('classifyBatchFailure', () => {
  it('maps sender faults to permanent errors and the rest to retryable ones', () => {
    expect(classifyBatchFailure({ Code: 'InvalidParameterValue', SenderFault: true }, 'op')).toMatchObject({ code: 'INVALID_MESSAGE', retryable: false });
    expect(classifyBatchFailure({ Code: 'Odd', SenderFault: true }, 'op')).toMatchObject({ code: 'REJECTED', retryable: false });
    expect(classifyBatchFailure({ Code: 'InternalError', SenderFault: false }, 'op')).toMatchObject({ code: 'NOT_CONFIRMED', retryable: true });
    expect(classifyBatchFailure({ Code: 'Odd', SenderFault: false }, 'op')).toMatchObject({ code: 'NOT_CONFIRMED', retryable: true });
    expect(classifyBatchFailure({ Code: 'ReceiptHandleIsInvalid', SenderFault: true }, 'op').code).toBe('REJECTED');
  });
});

// Defect 4 (issue #16): a parameter AWS refuses while declaring (e.g. maxReceiveCount > 1000) is
// a configuration matter, not a bad message.
describe('classifyDeclareError', () => {
  it.each(['InvalidParameterValue', 'InvalidAttributeValue', 'InvalidAttributeName', 'InvalidParameterValueException', 'ValidationError'])('%s → CONFIG', (name) => {
    const err = classifyDeclareError(awsError(name), 'SetQueueAttributes RedrivePolicy');
    expect(err.code).toBe('CONFIG');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('SetQueueAttributes RedrivePolicy');
  });

  it('leaves other failures as they are', () => {
    expect(classifyDeclareError(awsError('ThrottlingException'), 'op')).toMatchObject({ code: 'NOT_CONFIRMED', retryable: true });
    expect(classifyDeclareError(awsError('AccessDenied'), 'op').code).toBe('AUTH');
  });
});

// Issue #22: an SQS-only endpoint (ElasticMQ) answers SNS calls with InvalidAction; say what to do.
describe('classifyDeclareError on an endpoint without SNS', () => {
  it.each(['CreateTopic orders', 'Subscribe', 'ListTopics'])('%s refused with InvalidAction → CONFIG naming sns=false and snsEndpoint', (what) => {
    const err = classifyDeclareError(awsError('InvalidAction', { $metadata: { httpStatusCode: 400 } }), what);
    expect(err.code).toBe('CONFIG');
    expect(err.message).toContain('does not serve SNS');
    expect(err.message).toContain('sns=false');
    expect(err.message).toContain('snsEndpoint');
  });

  it('an SQS call refused with InvalidAction is not blamed on SNS', () => {
    expect(classifyDeclareError(awsError('InvalidAction'), 'CreateQueue orders').message).not.toContain('SNS');
  });
});
