/**
 * The adapter's error table: what rocketmq-client-nodejs and gRPC throw, as mqkit codes. Drivers
 * never retry; core retries whatever is classified retryable until the publish deadline.
 */
import { connectionErrnoIn, isConnectionErrno, MqError, type ErrorCode } from '@mqkit/core/driver';

/** gRPC status codes (@grpc/grpc-js `status`). */
const GRPC = {
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
  PERMISSION_DENIED: 7,
  NOT_FOUND: 5,
  UNIMPLEMENTED: 12,
} as const;

interface Classified {
  readonly code: ErrorCode;
  readonly retryable: boolean;
}

/**
 * RocketMQ 5 response codes (apache.rocketmq.v2.Code): 400xx bad request, 401/403 auth,
 * 404xx not found, 408 timeout, 413/431 too large, 429 throttled, 500xx internal (retryable),
 * 501/505xx unsupported, 504xx persistence/proxy timeout.
 */
export function classifyResponseCode(code: number): Classified {
  if (code >= 40400 && code < 40500) return { code: 'NOT_FOUND', retryable: false };
  if (code === 40100 || code === 40300) return { code: 'AUTH', retryable: false };
  if (code === 41300 || code === 41301 || code === 43100 || code === 43101) return { code: 'TOO_LARGE', retryable: false };
  if (code === 40800) return { code: 'TIMEOUT', retryable: true };
  if (code === 42900) return { code: 'NOT_CONFIRMED', retryable: true };
  // 504xx: the broker may have stored the message (e.g. flush/replica timeout): try again, dedup on consume.
  if (code >= 50400 && code < 50500) return { code: 'TIMEOUT', retryable: true };
  if (code === 50100 || (code >= 50500 && code < 50600)) return { code: 'UNSUPPORTED', retryable: false };
  if (code >= 50000 && code < 60000) return { code: 'NOT_CONFIRMED', retryable: true };
  if (code >= 40000 && code < 50000) return { code: 'REJECTED', retryable: false };
  return { code: 'INTERNAL', retryable: false };
}

function classifyGrpc(code: number): Classified | undefined {
  switch (code) {
    case GRPC.UNAVAILABLE:
    case GRPC.CANCELLED:
    case GRPC.UNKNOWN:
    case GRPC.INTERNAL:
      return { code: 'CONNECTION', retryable: true };
    case GRPC.DEADLINE_EXCEEDED:
      return { code: 'TIMEOUT', retryable: true };
    case GRPC.RESOURCE_EXHAUSTED:
      return { code: 'NOT_CONFIRMED', retryable: true };
    case GRPC.UNAUTHENTICATED:
    case GRPC.PERMISSION_DENIED:
      return { code: 'AUTH', retryable: false };
    case GRPC.NOT_FOUND:
      return { code: 'NOT_FOUND', retryable: false };
    case GRPC.UNIMPLEMENTED:
      return { code: 'UNSUPPORTED', retryable: false };
    default:
      return undefined;
  }
}

/** The client wraps startup failures twice (`Startup … failed` → `Failed to fetch topic routes` → cause). */
function rootCause(err: unknown): unknown {
  let current = err;
  for (let depth = 0; depth < 5; depth += 1) {
    if (!(current instanceof Error) || current.cause === undefined) return current;
    if (!/startup the rocketmq client failed|failed to fetch topic routes/i.test(current.message)) return current;
    current = current.cause;
  }
  return current;
}

/** Maps anything the client throws to an {@link MqError}; `context` goes to `details` (never secrets). */
export function classify(err: unknown, context: Readonly<Record<string, unknown>> = {}): MqError {
  if (err instanceof MqError) return err;
  const cause = rootCause(err);
  const message = cause instanceof Error ? cause.message : String(cause);
  const rawCode = (cause as { code?: unknown } | null)?.code;
  let classified: Classified | undefined;
  if (typeof rawCode === 'number') {
    classified = rawCode >= 10000 ? classifyResponseCode(rawCode) : classifyGrpc(rawCode);
  }
  classified ??= isConnectionErrno(rawCode) ? { code: 'CONNECTION', retryable: true } : classifyMessage(message);
  const details: Record<string, unknown> = { ...context };
  if (typeof rawCode === 'number') details.nativeCode = rawCode;
  return new MqError(classified.code, `rocketmq: ${message}`, { cause: err, retryable: classified.retryable, details });
}

/** Errors the client raises locally, recognisable only by their text. */
function classifyMessage(message: string): Classified {
  if (/message type not match/i.test(message)) return { code: 'REJECTED', retryable: false };
  if (/body size exceeds/i.test(message)) return { code: 'TOO_LARGE', retryable: false };
  if (/not running/i.test(message)) return { code: 'CLOSED', retryable: false };
  if (connectionErrnoIn(message) || /socket hang up|No connection established/i.test(message)) return { code: 'CONNECTION', retryable: true };
  if (/timed? ?out|deadline/i.test(message)) return { code: 'TIMEOUT', retryable: true };
  if (/mutually exclusive|should not set/i.test(message)) return { code: 'INVALID_MESSAGE', retryable: false };
  return { code: 'INTERNAL', retryable: false };
}
