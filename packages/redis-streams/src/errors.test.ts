import { MqError } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { toMqError } from './errors.ts';

describe('redis-streams error classification', () => {
  it.each([
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' }), 'CONNECTION', true],
    [Object.assign(new Error('Reached the max retries per request limit'), { name: 'MaxRetriesPerRequestError' }), 'CONNECTION', true],
    [new Error('Connection is closed.'), 'CONNECTION', true],
    [new Error('LOADING Redis is loading the dataset in memory'), 'CONNECTION', true],
    [new Error('WRONGPASS invalid username-password pair'), 'AUTH', false],
    [new Error("OOM command not allowed when used memory > 'maxmemory'"), 'REJECTED', true],
    [new Error('WRONGTYPE Operation against a key holding the wrong kind of value'), 'CONFIG', false],
    [new Error('ERR something else'), 'INTERNAL', false],
  ])('%s → %s', (err, code, retryable) => {
    const e = toMqError(err, 'publishing');
    expect(e.code).toBe(code);
    expect(e.retryable).toBe(retryable);
    expect(e.cause).toBe(err);
  });

  it('keeps an MqError as it is', () => {
    const err = new MqError('CLOSED', 'closed');
    expect(toMqError(err, 'x')).toBe(err);
  });
});
