/**
 * `@mqkit/core/driver`: what adapter packages implement and the helpers they share.
 */
export type {
  Adapter,
  Capabilities,
  DelayCapability,
  DeliverySink,
  Driver,
  DriverContext,
  DriverDelivery,
  DriverReceiver,
  ReceivedMessage,
  SettleResults,
  DriverSubscription,
  DriverTransaction,
  SendOutcome,
  SubscriptionSpec,
} from './driver.ts';
export {
  declareCall,
  missingTopologyError,
  type DriverTopology,
  type MissingTopology,
  type TopologyCapabilities,
  type TopologySpec,
} from './topology.ts';
export { MqError, toMqError, ERROR_CODES, type ErrorCode } from '../errors.ts';
export { HEADERS, WIRE_HEADERS, LEGACY_WIRE_HEADERS, RESERVED_HEADER_PREFIX, envelopeSize, envelopeSizeBound, type Envelope } from '../message.ts';
export { redactUrl, parseUrlOptions, parseOptions, configError } from '../config.ts';
export { backoffDelay, sleep, type BackoffPolicy } from '../backoff.ts';
export { withDeadline, settledWithin } from '../deadline.ts';
export { CONNECTION_ERRNOS, isConnectionErrno, connectionErrnoIn } from '../socket-errors.ts';
export type { Logger } from '../logger.ts';
export { AttemptLedger, processAttemptLedger } from '../attempt-ledger.ts';
export { OrderedLanes } from '../ordered-lanes.ts';
export { SettleBatcher, type BatchRunner } from '../settle-batcher.ts';
export { PullSubscription, type PullSubscriptionArgs } from '../pull-subscription.ts';
export { silentLogger } from '../logger.ts';
export { PushBuffer } from '../push-buffer.ts';
export { uninstrumented } from '../telemetry.ts';
export { deadLetterInfo, applicationHeaders, opsUnsupported, type DriverOps, type OpsAdapter, type OpsCapabilities, type MessageBatch, type StoredMessage, type BacklogRow, type DeadLetterInfo } from './ops.ts';
