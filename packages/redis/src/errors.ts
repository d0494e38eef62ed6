import { isConnectionErrno, MqError, type ErrorCode } from '@mqkit/core/driver';

/**
 * Maps an ioredis error to an mqkit code: connection trouble is retryable (the store's caller,
 * e.g. core's idempotent middleware, then fails the handler and the broker redelivers), auth and
 * script errors are not.
 */
export function classifyRedisError(err: unknown): { code: ErrorCode; retryable: boolean } {
  const e = err as { code?: unknown; message?: unknown; name?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  const name = typeof e?.name === 'string' ? e.name : '';
  if (isConnectionErrno(code)) return { code: 'CONNECTION', retryable: true };
  if (name === 'MaxRetriesPerRequestError' || /Connection is closed|Stream isn't writeable|connect ETIMEDOUT/i.test(message)) {
    return { code: 'CONNECTION', retryable: true };
  }
  if (/^(NOAUTH|WRONGPASS|NOPERM)/.test(message)) return { code: 'AUTH', retryable: false };
  if (/^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY)/.test(message)) return { code: 'CONNECTION', retryable: true };
  if (/^OOM/.test(message)) return { code: 'REJECTED', retryable: true };
  return { code: 'INTERNAL', retryable: false };
}

/** Wraps an ioredis error into an {@link MqError} (the original stays in `cause`). */
export function toRedisMqError(err: unknown, what: string): MqError {
  if (MqError.is(err)) return err;
  const { code, retryable } = classifyRedisError(err);
  const message = err instanceof Error ? err.message : String(err);
  return new MqError(code, `${what}: ${message}`, { cause: err, retryable });
}
