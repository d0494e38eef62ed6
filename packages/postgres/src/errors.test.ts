import { describe, expect, it } from 'vitest';
import { classifyPgError, toPgMqError } from './errors.ts';

const pgErr = (code: string, message = 'x'): Error => Object.assign(new Error(message), { code });

describe('classifyPgError', () => {
  it.each([
    [pgErr('ECONNREFUSED'), 'CONNECTION', true],
    [new Error('Connection terminated unexpectedly'), 'CONNECTION', true],
    [pgErr('57P01', 'terminating connection due to administrator command'), 'CONNECTION', true],
    [pgErr('08006'), 'CONNECTION', true],
    [pgErr('53300', 'too many connections'), 'CONNECTION', true],
    [pgErr('28P01', 'password authentication failed'), 'AUTH', false],
    [pgErr('42P01', 'relation does not exist'), 'NOT_FOUND', false],
    [pgErr('57014', 'canceling statement due to statement timeout'), 'TIMEOUT', true],
    [pgErr('40001'), 'INTERNAL', true],
    [pgErr('40P01'), 'INTERNAL', true],
    [pgErr('23505', 'duplicate key'), 'INTERNAL', false],
  ])('%s → %s (retryable %s)', (err, code, retryable) => {
    expect(classifyPgError(err)).toEqual({ code, retryable });
  });

  it('keeps the SQLSTATE and the cause, and points at the migration for a missing table', () => {
    const native = pgErr('42P01', 'relation "mqkit_outbox" does not exist');
    const e = toPgMqError(native, 'outbox claim failed');
    expect(e).toMatchObject({ code: 'NOT_FOUND', retryable: false, details: { sqlState: '42P01' } });
    expect(e.cause).toBe(native);
    expect(e.message).toMatch(/migrate\(\)/);
  });
});
