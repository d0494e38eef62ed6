import { MqError, redactUrl } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { parseConfig, parseSubscribeOptions } from './options.ts';

describe('parseConfig', () => {
  it('reads endpoints, namespace and defaults', () => {
    const config = parseConfig('rocketmq://127.0.0.1:8081?namespace=shop', {});
    expect(config.endpoints).toBe('127.0.0.1:8081');
    expect(config.namespace).toBe('shop');
    expect(config.tls).toBe(false);
    expect(config.invisibleDurationMs).toBe(30_000);
    expect(config.requestTimeoutMs).toBe(5000);
    expect(config.declareGroups).toBe(false);
    expect(config.transactionTopics).toEqual([]);
  });

  it('joins several endpoints the way the client wants them', () => {
    expect(parseConfig('rocketmq://a:8081,b:8081', {}).endpoints).toBe('a:8081;b:8081');
  });

  it('takes credentials from the URL user info, explicit options win', () => {
    const config = parseConfig('rocketmq://AK:S%2Fecret@h:8081?tls=true', {});
    expect(config.accessKey).toBe('AK');
    expect(config.secretKey).toBe('S/ecret');
    expect(config.tls).toBe(true);
    expect(parseConfig('rocketmq://AK:x@h:8081', { secretKey: 'y' }).secretKey).toBe('y');
  });

  it('parses lists and booleans from the query', () => {
    const config = parseConfig('rocketmq://h:8081?transactionTopics=a,b&namesrv=h:9876', {});
    expect(config.transactionTopics).toEqual(['a', 'b']);
    expect(config.declareGroups).toBe(true);
    expect(parseConfig('rocketmq://h:8081?namesrv=h:9876&declareGroups=false', {}).declareGroups).toBe(false);
  });

  it('rejects unknown options and bad values with CONFIG, never echoing secrets', () => {
    const bad = (): unknown => {
      try {
        parseConfig('rocketmq://AK:topsecret@h:8081?invisibleDurationMs=5&secretKey=alsosecret', {});
      } catch (err) {
        return err;
      }
      return undefined;
    };
    const err = bad();
    expect(err).toBeInstanceOf(MqError);
    expect((err as MqError).code).toBe('CONFIG');
    expect(String((err as MqError).message)).not.toContain('topsecret');
    expect(String((err as MqError).message)).not.toContain('alsosecret');
    expect(JSON.stringify((err as MqError).details)).not.toContain('secret@');
    expect(() => parseConfig('rocketmq://h:8081?bogus=1', {})).toThrow(/bogus/);
  });

  it('requires accessKey and secretKey together', () => {
    expect(() => parseConfig('rocketmq://h:8081', { accessKey: 'AK' })).toThrow(MqError);
  });

  it('rejects URLs without endpoints', () => {
    expect(() => parseConfig('rocketmq://', {})).toThrow(/endpoint/);
    expect(() => parseConfig('rocketmq://h:8081/path?x', {})).toThrow(MqError);
  });

  it('redactUrl hides the secret key in the URL and query', () => {
    const shown = redactUrl('rocketmq://AK:topsecret@h:8081?secretKey=alsosecret&namespace=n');
    expect(shown).not.toContain('topsecret');
    expect(shown).not.toContain('alsosecret');
    expect(shown).toContain('namespace=n');
  });
});

describe('parseSubscribeOptions', () => {
  it('accepts the documented options and refuses others', () => {
    expect(parseSubscribeOptions({ invisibleDurationMs: 10_000, tag: 'a||b' })).toEqual({ invisibleDurationMs: 10_000, tag: 'a||b' });
    expect(() => parseSubscribeOptions({ visibilityTimeout: 3 })).toThrow(MqError);
  });

  it('takes receiveConcurrency between 1 and 16', () => {
    expect(parseSubscribeOptions({ receiveConcurrency: 2 })).toEqual({ receiveConcurrency: 2 });
    expect(() => parseSubscribeOptions({ receiveConcurrency: '2' })).toThrow(MqError);
    expect(() => parseSubscribeOptions({ receiveConcurrency: 0 })).toThrow(MqError);
    expect(() => parseSubscribeOptions({ receiveConcurrency: 17 })).toThrow(MqError);
  });
});

// Defect 8 (issue #16): strict option schemas; defect 4: the group's retry limit as an option.
describe('subscription option validation', () => {
  it.each<[string, Record<string, unknown>]>([
    ['a typo', { receiveBatchSize: 4, recieveConcurrency: 2 }],
    ['NaN', { receiveBatchSize: Number.NaN }],
    ['a negative count', { receiveConcurrency: -100 }],
    ['Infinity', { awaitDurationMs: Number.POSITIVE_INFINITY }],
    ['a non-numeric string', { invisibleDurationMs: '7d' }],
    ['a negative group retry limit', { groupRetryMaxTimes: -1 }],
    ['true as a number', { receiveBatchSize: true }],
  ])('%s is a CONFIG error naming the field', (_, options) => {
    let caught: unknown;
    try {
      parseSubscribeOptions(options);
    } catch (err) {
      caught = err;
    }
    expect(MqError.is(caught, 'CONFIG')).toBe(true);
    expect((caught as Error).message).toMatch(new RegExp(Object.keys(options).at(-1)!));
  });

  it('takes the retry limit of a group created outside mqkit', () => {
    expect(parseSubscribeOptions({ groupRetryMaxTimes: 40 })).toEqual({ groupRetryMaxTimes: 40 });
  });

  it.each<[string, Record<string, unknown>]>([
    ['a typo', { requestTimeoutMS: 5000 }],
    ['NaN', { requestTimeoutMs: Number.NaN }],
    ['a negative duration', { invisibleDurationMs: -1 }],
    ['true as a number', { requestTimeoutMs: true }],
    ['an empty string as a number', { receiveBatchSize: '' }],
  ])('connection options: %s is a CONFIG error naming the field', (_, options) => {
    let caught: unknown;
    try {
      parseConfig('rocketmq://h:8081', options);
    } catch (err) {
      caught = err;
    }
    expect(MqError.is(caught, 'CONFIG')).toBe(true);
    expect((caught as Error).message).toMatch(new RegExp(Object.keys(options)[0]!));
  });
});
