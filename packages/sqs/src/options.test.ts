import { MqError, redactUrl } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { parseConnection, parseSubscription, redriveReceiveCount } from './options.ts';

describe('parseConnection', () => {
  it('reads region, endpoint and mode from the URL', () => {
    const s = parseConnection('sqs://?region=eu-west-1&endpoint=http://127.0.0.1:9324&sns=false', {}, {});
    expect(s).toMatchObject({ region: 'eu-west-1', endpoint: 'http://127.0.0.1:9324', sns: false, declare: true, maxMessageBytes: 1024 * 1024 });
  });

  it('takes the region from the host or the environment, and defaults to SNS fan-out', () => {
    expect(parseConnection('sqs://us-east-2', {}, {})).toMatchObject({ region: 'us-east-2', sns: true, maxMessageBytes: 256 * 1024 });
    expect(parseConnection('sqs://', {}, { AWS_REGION: 'ap-south-1' }).region).toBe('ap-south-1');
  });

  it('reads numbers from the URL query', () => {
    expect(parseConnection('sqs://us-east-1?requestTimeoutMs=2500&sdkMaxAttempts=3', {}, {})).toMatchObject({ requestTimeoutMs: 2500, sdkMaxAttempts: 3 });
  });

  it('lets explicit options win over the URL', () => {
    const s = parseConnection('sqs://?region=eu-west-1&declare=false', { region: 'us-east-1', declare: true }, {});
    expect(s).toMatchObject({ region: 'us-east-1', declare: true });
  });

  it('accepts credentials only as an option object', () => {
    const s = parseConnection('sqs://us-east-1', { credentials: { accessKeyId: 'AKIA', secretAccessKey: 's3cr3t' } }, {});
    expect(s.credentials?.accessKeyId).toBe('AKIA');
  });

  it('rejects bad input with CONFIG errors that never echo secrets', () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['sqs://?region=us-east-1&secretAccessKey=hunter2', {}],
      ['sqs://user:hunter2@us-east-1', {}],
      ['sqs://?region=us-east-1&sns=maybe&token=hunter2', {}],
      ['sqs://', {}],
      ['sqs://us-east-1', { credentials: { accessKeyId: 'a', secretAccessKey: '' } }],
      ['sqs://us-east-1?sns=false&snsEndpoint=http://x', {}],
      ['sqs://us-east-1?maxMessageBytes=2000000', {}],
      ['kafka://x', {}],
    ];
    for (const [url, options] of cases) {
      let caught: unknown;
      try {
        parseConnection(url, options, {});
      } catch (err) {
        caught = err;
      }
      expect(MqError.is(caught, 'CONFIG'), url).toBe(true);
      expect((caught as Error).message).not.toContain('hunter2');
      expect(JSON.stringify((caught as MqError).details)).not.toContain('hunter2');
    }
  });

  it('redacts secrets in URLs', () => {
    expect(redactUrl('sqs://?region=us-east-1&secretAccessKey=hunter2&sessionToken=abc')).not.toMatch(/hunter2|abc/);
  });
});

describe('parseSubscription', () => {
  it('has defaults', () => {
    expect(parseSubscription({})).toMatchObject({ visibilityTimeoutSec: 30, waitTimeSec: 20, heartbeat: true, redrive: true, filterPolicyScope: 'MessageAttributes' });
  });

  it('validates', () => {
    expect(parseSubscription({ visibilityTimeoutSec: 5, filterPolicy: { kind: ['a'] } }).visibilityTimeoutSec).toBe(5);
    expect(() => parseSubscription({ waitTimeSec: 21 })).toThrow(MqError);
    expect(() => parseSubscription({ nope: 1 })).toThrow(/nope/);
  });
});

// Defect 8 (issue #16): every adapter option object is checked by a strict schema.
describe('option validation', () => {
  it.each<[string, Record<string, unknown>]>([
    ['a typo', { pollers: 2, concurrancy: 3 }],
    ['NaN', { pollers: Number.NaN }],
    ['a negative count', { visibilityTimeoutSec: -100 }],
    ['a fraction', { waitTimeSec: 1.5 }],
    ['Infinity', { pollers: Number.POSITIVE_INFINITY }],
    ['a non-numeric string', { maxReceiveCount: '7d' }],
    ['a numeric string (no coercion of options from code)', { visibilityTimeoutSec: '5' }],
    ['true as a number', { pollers: true }],
    ['a string as a flag', { heartbeat: 'false' }],
    ['maxReceiveCount over the AWS limit', { maxReceiveCount: 1001 }],
  ])('subscription options: %s is a CONFIG error naming the field', (_, options) => {
    let caught: unknown;
    try {
      parseSubscription(options);
    } catch (err) {
      caught = err;
    }
    expect(MqError.is(caught, 'CONFIG')).toBe(true);
    expect((caught as Error).message).toMatch(new RegExp(Object.keys(options).at(-1)!));
  });

  it.each<[string, Record<string, unknown>]>([
    ['a typo', { requestTimeoutMS: 5 }],
    ['NaN', { requestTimeoutMs: Number.NaN }],
    ['a negative timeout', { requestTimeoutMs: -1 }],
    ['sdkMaxAttempts 0', { sdkMaxAttempts: 0 }],
    ['true as a number', { requestTimeoutMs: true }],
    ['an empty string as a number', { sdkMaxAttempts: '' }],
  ])('connection options: %s is a CONFIG error naming the field', (_, options) => {
    let caught: unknown;
    try {
      parseConnection('sqs://us-east-1', options, {});
    } catch (err) {
      caught = err;
    }
    expect(MqError.is(caught, 'CONFIG')).toBe(true);
    expect((caught as Error).message).toMatch(new RegExp(Object.keys(options)[0]!));
  });
});

// Defect 4 (issue #16): the native redrive must never fire before core's maxAttempts, and a
// policy beyond SQS's 1,000 receives must still work (core counts attempts itself).
describe('redriveReceiveCount', () => {
  it('sits above maxAttempts while SQS allows it', () => {
    expect(redriveReceiveCount(5, undefined)).toBe(7);
    expect(redriveReceiveCount(998, undefined)).toBe(1000);
  });

  it('is as high as SQS allows for ordered subscriptions (successors given back gain receives)', () => {
    expect(redriveReceiveCount(5, undefined, true)).toBe(1000);
    expect(redriveReceiveCount(1500, undefined, true)).toBeUndefined();
  });

  it('is none when maxAttempts is beyond what SQS allows, or unlimited', () => {
    expect(redriveReceiveCount(999, undefined)).toBeUndefined();
    expect(redriveReceiveCount(1500, undefined)).toBeUndefined();
    expect(redriveReceiveCount(Number.POSITIVE_INFINITY, undefined)).toBeUndefined();
  });

  it('takes a configured count above maxAttempts and refuses one at or below it with CONFIG', () => {
    expect(redriveReceiveCount(5, 50)).toBe(50);
    expect(() => redriveReceiveCount(5, 5)).toThrow(/maxReceiveCount/);
    expect(() => redriveReceiveCount(Number.POSITIVE_INFINITY, 1000)).toThrow(/maxReceiveCount/);
    try {
      redriveReceiveCount(25, 20);
    } catch (err) {
      expect(MqError.is(err, 'CONFIG')).toBe(true);
    }
  });
});
