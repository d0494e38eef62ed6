import { isConnectionErrno, MqError, type ErrorCode } from '@mqkit/core/driver';

/**
 * Maps a `pg` error to an mqkit code by SQLSTATE class (https://www.postgresql.org/docs/current/errcodes-appendix.html),
 * so the relay's backoff and callers' retry decisions work the same as for broker errors.
 */
export function classifyPgError(err: unknown): { code: ErrorCode; retryable: boolean } {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  if (isConnectionErrno(code)) return { code: 'CONNECTION', retryable: true };
  if (/Connection terminated|Client has encountered a connection error|connection timeout|not queryable/i.test(message)) {
    return { code: 'CONNECTION', retryable: true };
  }
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') {
    return { code: 'CONNECTION', retryable: true };
  }
  if (code.startsWith('28')) return { code: 'AUTH', retryable: false };
  if (code === '42P01' || code === '3F000') return { code: 'NOT_FOUND', retryable: false };
  if (code === '57014') return { code: 'TIMEOUT', retryable: true };
  // serialization failure, deadlock, lock not available: another transaction won, try again.
  if (code === '40001' || code === '40P01' || code === '55P03') return { code: 'INTERNAL', retryable: true };
  if (code.startsWith('53')) return { code: 'INTERNAL', retryable: true };
  return { code: 'INTERNAL', retryable: false };
}

/** Wraps a `pg` error into an {@link MqError} (the original stays in `cause`). */
export function toPgMqError(err: unknown, what: string): MqError {
  if (MqError.is(err)) return err;
  const { code, retryable } = classifyPgError(err);
  const sqlState = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  const hint = code === 'NOT_FOUND' ? ' (did you run the @mqkit/postgres migration? see migrate())' : '';
  return new MqError(code, `${what}: ${message}${hint}`, {
    cause: err,
    retryable,
    details: typeof sqlState === 'string' ? { sqlState } : {},
  });
}
