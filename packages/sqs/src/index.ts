/**
 * `@mqkit/sqs`: the mqkit adapter for Amazon SQS and SNS over the AWS SDK v3.
 *
 * `connect('sqs://us-east-1', { adapters: [sqs()] })`: topics are SNS topics, each consumer group
 * an SQS queue subscribed with raw delivery (fan-out across groups). With `sns=false`, a topic is
 * one SQS queue and groups compete on it. See README.md.
 */
export { sqs, adapter, sqsCapabilities, SqsDriver, MAX_DELAY_MS, type SqsNative } from './driver.ts';
export type { SqsOptions, SqsSubscribeOptions } from './options.ts';
export { META_ATTRIBUTE } from './wire.ts';
export { groupQueueName, topicQueueName, nativeTopicName } from './names.ts';
export { ops } from './ops.ts';
