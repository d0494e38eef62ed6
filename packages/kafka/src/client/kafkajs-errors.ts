/**
 * kafkajs errors → MqError codes. Matched by `name` and protocol `type` rather than `instanceof`,
 * so two copies of kafkajs in one install still classify. kafkajs wraps the error that exhausted
 * its retries (`KafkaJSNumberOfRetriesExceeded`, non-retriable to kafkajs) around the real cause;
 * the cause decides, because core's reliable sender must keep retrying a connection loss until its
 * own deadline.
 */
import { connectionErrnoIn, isConnectionErrno, MqError, type ErrorCode } from '@mqkit/core/driver';

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

/** Protocol error types with a fixed meaning; the rest go by kafkajs' `retriable` flag. */
const PROTOCOL_TYPES: Readonly<Record<string, { code: ErrorCode; retryable: boolean }>> = {
  MESSAGE_TOO_LARGE: { code: 'TOO_LARGE', retryable: false },
  RECORD_LIST_TOO_LARGE: { code: 'TOO_LARGE', retryable: false },
  INVALID_RECORD: { code: 'INVALID_MESSAGE', retryable: false },
  CORRUPT_MESSAGE: { code: 'NOT_CONFIRMED', retryable: true },
  INVALID_TOPIC_EXCEPTION: { code: 'INVALID_MESSAGE', retryable: false },
  INVALID_REQUIRED_ACKS: { code: 'CONFIG', retryable: false },
  UNKNOWN_TOPIC_OR_PARTITION: { code: 'NOT_FOUND', retryable: false },
  TOPIC_AUTHORIZATION_FAILED: { code: 'AUTH', retryable: false },
  GROUP_AUTHORIZATION_FAILED: { code: 'AUTH', retryable: false },
  CLUSTER_AUTHORIZATION_FAILED: { code: 'AUTH', retryable: false },
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: { code: 'AUTH', retryable: false },
  SASL_AUTHENTICATION_FAILED: { code: 'AUTH', retryable: false },
  ILLEGAL_SASL_STATE: { code: 'AUTH', retryable: false },
  UNSUPPORTED_SASL_MECHANISM: { code: 'AUTH', retryable: false },
  POLICY_VIOLATION: { code: 'REJECTED', retryable: false },
  UNSUPPORTED_VERSION: { code: 'UNSUPPORTED', retryable: false },
  UNSUPPORTED_FOR_MESSAGE_FORMAT: { code: 'UNSUPPORTED', retryable: false },
  NOT_ENOUGH_REPLICAS: { code: 'NOT_CONFIRMED', retryable: true },
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: { code: 'NOT_CONFIRMED', retryable: true },
  OUT_OF_ORDER_SEQUENCE_NUMBER: { code: 'NOT_CONFIRMED', retryable: true },
  UNKNOWN_PRODUCER_ID: { code: 'NOT_CONFIRMED', retryable: true },
  INVALID_PRODUCER_EPOCH: { code: 'NOT_CONFIRMED', retryable: true },
  REQUEST_TIMED_OUT: { code: 'TIMEOUT', retryable: true },
  NETWORK_EXCEPTION: { code: 'CONNECTION', retryable: true },
  LEADER_NOT_AVAILABLE: { code: 'CONNECTION', retryable: true },
  NOT_LEADER_FOR_PARTITION: { code: 'CONNECTION', retryable: true },
  BROKER_NOT_AVAILABLE: { code: 'CONNECTION', retryable: true },
  COORDINATOR_NOT_AVAILABLE: { code: 'CONNECTION', retryable: true },
  NOT_COORDINATOR: { code: 'CONNECTION', retryable: true },
  COORDINATOR_LOAD_IN_PROGRESS: { code: 'CONNECTION', retryable: true },
  CONCURRENT_TRANSACTIONS: { code: 'NOT_CONFIRMED', retryable: true },
  INVALID_TXN_STATE: { code: 'INTERNAL', retryable: false },
  PRODUCER_FENCED: { code: 'REJECTED', retryable: false },
  TRANSACTION_COORDINATOR_FENCED: { code: 'REJECTED', retryable: false },
};

function asKafkaError(err: unknown): KafkaLikeError | undefined {
  return typeof err === 'object' && err !== null ? (err as KafkaLikeError) : undefined;
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
