/**
 * @platformatic/kafka errors → MqError codes. Matched by the library's `code` (`PLT_KFK_*`) and,
 * for broker answers, the protocol error name (`apiId`) rather than `instanceof`, so two copies of
 * the library in one install still classify. The library nests errors two ways: `cause`, and
 * `errors` (a response with errors per partition, or every attempt of an operation it retried);
 * the first error with a known meaning decides, so that core's reliable sender keeps retrying a
 * connection loss until its own deadline.
 */
import { connectionErrnoIn, isConnectionErrno, MqError, type ErrorCode } from '@mqkit/core/driver';
import { PROTOCOL_TYPES } from './protocol-errors.ts';

interface PlatformaticLikeError {
  constructor?: { name?: unknown };
  message?: unknown;
  code?: unknown;
  apiId?: unknown;
  canRetry?: unknown;
  cause?: unknown;
  errors?: unknown;
}

type Verdict = { code: ErrorCode; retryable: boolean };

function asError(err: unknown): PlatformaticLikeError | undefined {
  return typeof err === 'object' && err !== null ? (err) : undefined;
}

/** Every error in the tree, breadth first (bounded). */
function tree(err: unknown): PlatformaticLikeError[] {
  const out: PlatformaticLikeError[] = [];
  const queue: unknown[] = [err];
  while (queue.length > 0 && out.length < 32) {
    const e = asError(queue.shift());
    if (!e || out.includes(e)) continue;
    out.push(e);
    if (e.cause !== undefined) queue.push(e.cause);
    if (Array.isArray(e.errors)) queue.push(...(e.errors as unknown[]));
  }
  return out;
}

/** The Kafka protocol error name of `err` or of an error nested in it (`TOPIC_ALREADY_EXISTS`…). */
export function protocolErrorId(err: unknown): string | undefined {
  const found = tree(err).find((e) => typeof e.apiId === 'string');
  return found?.apiId as string | undefined;
}

function classifyOne(e: PlatformaticLikeError): Verdict | undefined {
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  if (typeof e.apiId === 'string') {
    const known = PROTOCOL_TYPES[e.apiId];
    if (known) return known;
    return e.canRetry === true ? { code: 'CONNECTION', retryable: true } : { code: 'REJECTED', retryable: false };
  }
  if (code === 'PLT_KFK_AUTHENTICATION') return { code: 'AUTH', retryable: false };
  // Consuming a topic the metadata does not list (no broker error code behind it).
  if (code === 'PLT_KFK_USER' && /^unknown topic\b/i.test(message)) return { code: 'NOT_FOUND', retryable: false };
  // The library's TimeoutError carries the network code: told apart by class name or message.
  if (e.constructor?.name === 'TimeoutError' || code === 'PLT_KFK_TIMEOUT') return { code: 'TIMEOUT', retryable: true };
  if (code === 'PLT_KFK_NETWORK') return /timed? ?out/i.test(message) ? { code: 'TIMEOUT', retryable: true } : { code: 'CONNECTION', retryable: true };
  if (code === 'PLT_KFK_UNSUPPORTED_API' || code === 'PLT_KFK_UNSUPPORTED' || code === 'PLT_KFK_UNSUPPORTED_COMPRESSION' || code === 'PLT_KFK_UNSUPPORTED_FORMAT') {
    return { code: 'UNSUPPORTED', retryable: false };
  }
  if (isConnectionErrno(e.code)) return { code: 'CONNECTION', retryable: true };
  if (message && (connectionErrnoIn(message) || /connection (error|closed|timeout)|not connected|disconnected|socket/i.test(message))) {
    return { code: 'CONNECTION', retryable: true };
  }
  return undefined;
}

/**
 * Classifies anything @platformatic/kafka throws. Unknown errors are INTERNAL, retryable when the
 * library says it can retry them.
 */
export function classifyPlatformaticError(err: unknown, context: Readonly<Record<string, unknown>> = {}): MqError {
  if (err instanceof MqError) return err;
  const all = tree(err);
  let verdict: Verdict | undefined;
  for (const e of all) {
    verdict = classifyOne(e);
    if (verdict) break;
  }
  const head = all[0];
  const message = head && typeof head.message === 'string' ? head.message : String(err);
  const apiId = all.find((e) => typeof e.apiId === 'string')?.apiId;
  verdict ??= { code: 'INTERNAL', retryable: all.some((e) => e.canRetry === true) };
  return new MqError(verdict.code, `kafka: ${message}`, {
    cause: err,
    retryable: verdict.retryable,
    details: { ...context, ...(typeof apiId === 'string' ? { kafkaError: apiId } : {}) },
  });
}
