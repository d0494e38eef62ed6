/**
 * Socket error codes, shared by every adapter's error classifier: one list, so that a lost link
 * is CONNECTION (retryable) whichever client reports it.
 */

/**
 * Node's (and undici's) error codes for a peer that is unreachable or a link that broke: retry
 * after reconnecting. `ETIMEDOUT` is here too; an adapter may report it as TIMEOUT instead.
 */
export const CONNECTION_ERRNOS: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ERR_SOCKET_CLOSED',
  'UND_ERR_SOCKET',
]);

/** Whether an error's `code` is one of {@link CONNECTION_ERRNOS}. */
export function isConnectionErrno(code: unknown): boolean {
  return typeof code === 'string' && CONNECTION_ERRNOS.has(code);
}

const NAMED_ERRNO = new RegExp(`\\b(${[...CONNECTION_ERRNOS].join('|')})\\b`);

/**
 * The first of {@link CONNECTION_ERRNOS} an error text names (`connect ECONNREFUSED 127.0.0.1:5672`),
 * for clients that keep the socket error only in a message.
 */
export function connectionErrnoIn(text: string): string | undefined {
  return NAMED_ERRNO.exec(text)?.[1];
}
