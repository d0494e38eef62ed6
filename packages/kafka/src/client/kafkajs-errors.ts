/**
 * kafkajs errors → MqError codes. Matched by `name` and protocol `type` rather than `instanceof`,
 * so two copies of kafkajs in one install still classify. kafkajs wraps the error that exhausted
 * its retries (`KafkaJSNumberOfRetriesExceeded`, non-retriable to kafkajs) around the real cause;
 * the cause decides, because core's reliable sender must keep retrying a connection loss until its
 * own deadline.
 */
import { connectionErrnoIn, isConnectionErrno, MqError, type ErrorCode } from '@mqkit/core/driver';
import { PROTOCOL_TYPES } from './protocol-errors.ts';

interface KafkaLikeError {
  name?: unknown;
  message?: unknown;
  type?: unknown;
  code?: unknown;
  retriable?: unknown;
  cause?: unknown;
  originalError?: unknown;
}

const CONNECTION_NAMES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSBrokerNotFound',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSStaleTopicMetadataAssignment',
  'KafkaJSGroupCoordinatorNotFound',
]);

const TIMEOUT_NAMES = new Set(['KafkaJSRequestTimeoutError', 'KafkaJSTimeout', 'KafkaJSLockTimeout']);

function asKafkaError(err: unknown): KafkaLikeError | undefined {
  return typeof err === 'object' && err !== null ? (err) : undefined;
}

/** The innermost useful error: kafkajs nests causes in `cause` / `originalError`. */
function causes(err: unknown): KafkaLikeError[] {
  const chain: KafkaLikeError[] = [];
  let current = asKafkaError(err);
  while (current && chain.length < 8 && !chain.includes(current)) {
    chain.push(current);
    current = asKafkaError(current.cause ?? current.originalError);
  }
  return chain;
}

function classifyOne(e: KafkaLikeError): { code: ErrorCode; retryable: boolean } | undefined {
  const name = typeof e.name === 'string' ? e.name : '';
  if (typeof e.type === 'string') {
    const known = PROTOCOL_TYPES[e.type];
    if (known) return known;
    if (name === 'KafkaJSProtocolError' || name === 'KafkaJSCreateTopicError') {
      return e.retriable === true ? { code: 'CONNECTION', retryable: true } : { code: 'REJECTED', retryable: false };
    }
  }
  if (name === 'KafkaJSSASLAuthenticationError') return { code: 'AUTH', retryable: false };
  if (CONNECTION_NAMES.has(name)) return { code: 'CONNECTION', retryable: true };
  if (TIMEOUT_NAMES.has(name)) return { code: 'TIMEOUT', retryable: true };
  if (name === 'KafkaJSServerDoesNotSupportApiKey') return { code: 'UNSUPPORTED', retryable: false };
  if (isConnectionErrno(e.code)) return { code: 'CONNECTION', retryable: true };
  if (typeof e.message === 'string' && (connectionErrnoIn(e.message) || /connection error|connection timeout|closed connection|not connected|disconnected/i.test(e.message))) {
    return { code: 'CONNECTION', retryable: true };
  }
  return undefined;
}

/**
 * Classifies anything kafkajs throws. The first error in the cause chain with a known meaning
 * decides, so `KafkaJSNonRetriableError` / `KafkaJSNumberOfRetriesExceeded` around a connection
 * error is a retryable CONNECTION. Unknown errors are INTERNAL, retryable when kafkajs says so.
 */
export function classifyKafkaError(err: unknown, context: Readonly<Record<string, unknown>> = {}): MqError {
  if (err instanceof MqError) return err;
  const chain = causes(err);
  let verdict: { code: ErrorCode; retryable: boolean } | undefined;
  for (const e of chain) {
    verdict = classifyOne(e);
    if (verdict) break;
  }
  const head = chain[0];
  const message = head && typeof head.message === 'string' ? head.message : String(err);
  const type = chain.find((e) => typeof e.type === 'string')?.type;
  verdict ??= { code: 'INTERNAL', retryable: chain.some((e) => e.retriable === true) };
  return new MqError(verdict.code, `kafka: ${message}`, {
    cause: err,
    retryable: verdict.retryable,
    details: { ...context, ...(typeof type === 'string' ? { kafkaError: type } : {}) },
  });
}
