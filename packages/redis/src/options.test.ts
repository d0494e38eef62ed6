import { MqError } from '@mqkit/core';
import { describe, expect, it } from 'vitest';
import { classifyRedisError, toRedisMqError } from './errors.ts';
import { parseRedisDedupOptions, redisConnectionUrl } from './options.ts';
import { redisDedupStore } from './dedup-store.ts';

describe('redis dedup options', () => {
  it('defaults the prefix and reads it from the URL', () => {
    expect(parseRedisDedupOptions()).toEqual({ prefix: 'mqkit:dedup:' });
    expect(parseRedisDedupOptions({}, 'redis://:pw@h:6379/2?prefix=svc%3A')).toEqual({ prefix: 'svc:' });
    expect(parseRedisDedupOptions({ prefix: 'x:' }, 'redis://h?prefix=y:')).toEqual({ prefix: 'x:' });
  });

  it('rejects an unknown option with CONFIG naming it (a typo must not pass silently)', () => {
    let err: unknown;
    try {
      parseRedisDedupOptions({ prefx: 'svc:' } as never);
    } catch (e) {
      err = e;
    }
    expect(MqError.is(err, 'CONFIG')).toBe(true);
    expect((err as Error).message).toContain('prefx');
  });

  it('strips its own parameters from the URL given to ioredis', () => {
    expect(redisConnectionUrl('redis://:pw@h:6379/2?prefix=a&family=6')).toBe('redis://:pw@h:6379/2?family=6');
  });

  it('refuses a non-redis URL with CONFIG, the password redacted', () => {
    let err: unknown;
    try {
      redisDedupStore('http://user:hunter2@h');
    } catch (e) {
      err = e;
    }
    expect(MqError.is(err, 'CONFIG')).toBe(true);
    expect((err as Error).message).not.toContain('hunter2');
    expect((err as Error).message).toContain('***');
  });
});

describe('classifyRedisError', () => {
  it.each([
    [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'CONNECTION', true],
    [new Error('Connection is closed.'), 'CONNECTION', true],
    [Object.assign(new Error('Reached the max retries per request limit'), { name: 'MaxRetriesPerRequestError' }), 'CONNECTION', true],
    [new Error('NOAUTH Authentication required.'), 'AUTH', false],
    [new Error('WRONGPASS invalid username-password pair'), 'AUTH', false],
    [new Error('LOADING Redis is loading the dataset in memory'), 'CONNECTION', true],
    [new Error('READONLY You can\'t write against a read only replica.'), 'CONNECTION', true],
    [new Error('ERR syntax error'), 'INTERNAL', false],
  ])('%s → %s', (err, code, retryable) => {
    expect(classifyRedisError(err)).toEqual({ code, retryable });
    expect(toRedisMqError(err, 'op')).toMatchObject({ code, retryable });
  });
});
