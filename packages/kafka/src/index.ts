/**
 * `@mqkit/kafka`: the Kafka adapter for mqkit, over kafkajs 2.2.4. See README.md.
 */
export { kafka, adapter } from './adapter.ts';
export { KafkaDriver, nativeGroupId, type KafkaNative } from './driver.ts';
export type { KafkaDriverTransaction } from './transaction.ts';
export type { TopicOffsets } from './client/seam.ts';
export { type KafkaOptions, type KafkaSubscriptionOptions, parseKafkaUrl, safeUrlForErrors } from './options.ts';
export { kafkaCapabilities, MAX_DELAY_MS, TOPIC_PATTERN } from './capabilities.ts';
export { classifyKafkaError } from './client/kafkajs-errors.ts';
export { ID_HEADER, DELIVER_AT_HEADER } from './records.ts';
export { ops } from './ops.ts';
