import type { Capabilities } from '@mqkit/core/driver';

/** Longest emulated delay: held records keep their partition's commit position behind them. */
export const MAX_DELAY_MS = 15 * 60_000;

/** Kafka topic names: at most 249 characters of `[A-Za-z0-9._-]`, not `.` or `..`. */
export const TOPIC_PATTERN = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,249}$/;

/**
 * What the Kafka adapter offers (see README "Capabilities"). `createTopics`: sends first wait for
 * their topics to be declared, which could let a later send reach the producer ahead of an
 * earlier one whose declaration failed, so sends are then not declared ordered.
 */
export function kafkaCapabilities(maxMessageBytes: number, maxBatchSize: number, createTopics = false): Capabilities {
  return {
    // Emulated in the consumer: a record is held until its due time. Precision is a timer plus
    // the fetch wait (maxWaitTimeInMs, 100 ms by default).
    delay: { kind: 'emulated', maxMs: MAX_DELAY_MS, precisionMs: 250 },
    ordering: 'key',
    transactions: true,
    maxMessageBytes,
    maxBatchSize,
    // Kafka keeps no delivery count: the adapter counts attempts per partition offset.
    deliveryCount: 'tracked',
    topicPattern: TOPIC_PATTERN,
    maxHeaders: Number.POSITIVE_INFINITY,
    // One produce request at a time, in call order; a failed one fails those behind it
    // (SerialIdempotentProducer), so core may pipeline batches of one key.
    orderedSends: !createTopics,
  };
}
