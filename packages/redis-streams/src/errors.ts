import { MqError, type ErrorCode } from '@mqkit/core/driver';

const SOCKET_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);

/**
 * The mqkit code of an ioredis error: socket trouble and a server that is loading, busy or
 * failing over are CONNECTION (retryable); auth errors AUTH; OOM (maxmemory reached) REJECTED,
 * retryable; a wrong-type key (the topic name is taken by another kind of key) CONFIG.
 */
export function classify(err: unknown): { code: ErrorCode; retryable: boolean } {
  const e = err as { code?: unknown; message?: unknown; name?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  if (SOCKET_ERRNOS.has(code) || e?.name === 'MaxRetriesPerRequestError') return { code: 'CONNECTION', retryable: true };
  if (/Connection is closed|Stream isn't writeable|enableOfflineQueue|^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|UNBLOCKED)/.test(message)) {
    return { code: 'CONNECTION', retryable: true };
  }
  if (/^(NOAUTH|WRONGPASS|NOPERM)/.test(message)) return { code: 'AUTH', retryable: false };
  if (/^OOM/.test(message)) return { code: 'REJECTED', retryable: true };
  if (/^WRONGTYPE/.test(message)) return { code: 'CONFIG', retryable: false };
  return { code: 'INTERNAL', retryable: false };
}

/** An ioredis error as an {@link MqError} (the original stays in `cause`). */
export function toMqError(err: unknown, what: string): MqError {
  if (MqError.is(err)) return err;
  const { code, retryable } = classify(err);
  return new MqError(code, `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err, retryable });
}
