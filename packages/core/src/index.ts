/**
 * `@mqkit/core`: one reliable messaging API over Kafka, RabbitMQ, RocketMQ 5 and SQS/SNS.
 *
 * ```ts
 * const mq = await connect(process.env.MQ_URL ?? 'memory://', { adapters: [memory()] });
 * await mq.subscribe('orders', { group: 'billing', handler: async (m) => bill(m.payload) });
 * await mq.publish('orders', { id: 42 }, { key: 'customer-7' });
 * await mq.close();
 * ```
 */
export { connect, ADAPTER_PACKAGES, type ConnectConfig, type ConnectOptions } from './connect.ts';
export { Client, type Transaction } from './client.ts';
export type { ClientHealth, ComponentState, HealthError, HealthOptions, OutboxRelayHealth, PublisherHealth, SubscriptionHealth } from './health.ts';
export { SEMCONV_VERSION } from './telemetry.ts';
export { observeBacklog, type BacklogMetrics, type BacklogMetricsOptions } from './backlog-metrics.ts';
export type { TopicDeclaration, TopologyMode } from './topology.ts';
export type { MissingTopology } from './driver/topology.ts';
export {
  type OutgoingMessage,
  type PublishOptions,
  type PublishOutcome,
  type PublishPolicy,
  type PublishReceipt,
} from './publish.ts';
export { DEFAULT_RETRY, type CloseOptions, type RetryPolicy, type SubscribeOptions, type Subscription } from './subscription.ts';
export type { Delivery, Handler, Middleware, NackOptions, Settlement } from './delivery.ts';
export { MqError, toMqError, ERROR_CODES, type ErrorCode, type MqErrorOptions } from './errors.ts';
export { jsonCodec, bytesCodec, textCodec, type Codec } from './codec.ts';
export { HEADERS, type Envelope } from './message.ts';
export { idempotent, MemoryDedupStore, type BeginResult, type DedupStore, type IdempotencyOptions } from './idempotency.ts';
export {
  Outbox,
  OutboxRelay,
  type DeadOutboxRecord,
  type ListDeadOptions,
  type OutboxRecord,
  type OutboxRelayOptions,
  type OutboxStats,
  type OutboxStore,
} from './outbox.ts';
export { silentLogger, type Logger } from './logger.ts';
export { redactUrl } from './config.ts';
export type { Capabilities, DelayCapability } from './driver/driver.ts';
