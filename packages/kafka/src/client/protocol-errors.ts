/** Kafka protocol error names → MqError codes, shared by the client libraries' classifiers. */
import type { ErrorCode } from '@mqkit/core/driver';

/**
 * Kafka protocol errors (by their protocol name, which both clients report) with a fixed meaning;
 * the rest go by the client's own retriable flag.
 */
export const PROTOCOL_TYPES: Readonly<Record<string, { code: ErrorCode; retryable: boolean }>> = {
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
  NOT_LEADER_OR_FOLLOWER: { code: 'CONNECTION', retryable: true },
  FENCED_LEADER_EPOCH: { code: 'CONNECTION', retryable: true },
  BROKER_NOT_AVAILABLE: { code: 'CONNECTION', retryable: true },
  COORDINATOR_NOT_AVAILABLE: { code: 'CONNECTION', retryable: true },
  NOT_COORDINATOR: { code: 'CONNECTION', retryable: true },
  COORDINATOR_LOAD_IN_PROGRESS: { code: 'CONNECTION', retryable: true },
  CONCURRENT_TRANSACTIONS: { code: 'NOT_CONFIRMED', retryable: true },
  INVALID_TXN_STATE: { code: 'INTERNAL', retryable: false },
  PRODUCER_FENCED: { code: 'REJECTED', retryable: false },
  TRANSACTION_COORDINATOR_FENCED: { code: 'REJECTED', retryable: false },
};
