/**
 * The driver layer: the small interface each broker adapter implements. Retries, backoff,
 * dead-letter policy, deduplication, tracing, metrics, concurrency, ordering and shutdown live
 * once in the portable layer (`@mqkit/core`); drivers map single operations onto their broker
 * and never retry on their own.
 */
import type { MqError } from '../errors.ts';
import type { Envelope } from '../message.ts';
import type { Logger } from '../logger.ts';
import type { DriverTopology } from './topology.ts';

/** How an adapter delays a message. */
export interface DelayCapability {
  /** `native`: the broker holds it; `emulated`: the adapter does (e.g. retry topics); `none`. */
  readonly kind: 'native' | 'emulated' | 'none';
  /** Longest delay accepted, in ms (longer delays are rejected with UNSUPPORTED). */
  readonly maxMs: number;
  /** How late a delayed message may arrive beyond its delay, in ms, under light load. */
  readonly precisionMs: number;
}

/** What an adapter can do. The conformance suite tests every capability claimed here. */
export interface Capabilities {
  /** Delay on publish and on nack. */
  readonly delay: DelayCapability;
  /**
   * `key`: messages with the same key reach one group in publish order, and the driver hands them
   * to core one at a time per {@link DriverDelivery.orderingKey} when the subscription is ordered.
   */
  readonly ordering: 'key' | 'none';
  /** Native transactions (atomic multi-message publish); see {@link Driver.beginTransaction}. */
  readonly transactions: boolean;
  /** Largest accepted message (body + key + headers), in bytes. */
  readonly maxMessageBytes: number;
  /** Largest number of messages the driver accepts in one {@link Driver.send} call. */
  readonly maxBatchSize: number;
  /** `native`: the broker counts deliveries; `tracked`: the adapter carries the count itself. */
  readonly deliveryCount: 'native' | 'tracked';
  /** Topic names the broker accepts (core rejects others with INVALID_MESSAGE before sending). */
  readonly topicPattern: RegExp;
  /** Most headers a message may carry (SQS: 10 attributes), or `Infinity`. */
  readonly maxHeaders: number;
  /**
   * The driver writes its {@link Driver.send} calls one after another, in call order, and when a
   * call fails it also fails, unwritten, every call queued behind it and every call made before
   * the next turn of the event loop (by then core has booked the failure). Core may then keep
   * several batches of one key in flight, since none can be written ahead of an earlier one's
   * retry. Absent or false: one batch per key at a time.
   */
  readonly orderedSends?: boolean;
}

/** The outcome of one message of a {@link Driver.send} batch, in input order. */
export type SendOutcome =
  | { readonly ok: true; readonly receipt?: string | undefined }
  | { readonly ok: false; readonly error: MqError };

/** What a subscription asks of the driver. */
export interface SubscriptionSpec {
  readonly topic: string;
  /** Consumer group: competing consumers inside a group, fan-out across groups. */
  readonly group: string;
  /** Most deliveries the driver should have outstanding (prefetch / max in flight). */
  readonly maxInFlight: number;
  /** Keep per-key order: deliver at most one unsettled message per ordering key. */
  readonly ordered: boolean;
  /**
   * Deliveries before core dead-letters; may be `Infinity` (unlimited). Core enforces it from
   * {@link DriverDelivery.attempt}: a delivery arriving past it is dead-lettered unhandled. A
   * driver's native poison guard (delivery limit, maxReceiveCount) must never fire before it:
   * set above it, or none where the broker cannot go that high.
   */
  readonly maxAttempts: number;
  /** Where dead letters go. */
  readonly deadLetterTopic: string;
  /** Adapter-specific subscription options, passed through untouched (validated by the driver). */
  readonly options: Readonly<Record<string, unknown>>;
}

/**
 * One message on its way from core's pull loop ({@link DriverReceiver}, through
 * `PullSubscription`) to the subscription runtime. Each settle call is made at most once.
 */
export interface DriverDelivery {
  readonly envelope: Envelope;
  /** 1-based delivery attempt (the broker's count, corrected by core's attempt ledger). */
  readonly attempt: number;
  /** Serialisation lane for ordered subscriptions (e.g. Kafka partition, FIFO group); defaults to the key. */
  readonly orderingKey?: string | undefined;
  /** Broker-specific facts for logs and dead-letter headers (partition, offset, …). */
  readonly meta?: Readonly<Record<string, string>>;
  /** Done: the broker may forget the message. */
  ack(): Promise<void>;
  /**
   * Not done: redeliver to this group after `delayMs` (0 = as soon as possible) with attempt + 1.
   * The redelivery never reaches the runtime synchronously or on a microtask of this call: a
   * handler that always nacks must not starve the event loop (timers, heartbeats, close).
   */
  nack(delayMs: number): Promise<void>;
  /**
   * Native dead-lettering, when the receiver has it ({@link DriverReceiver.deadLetter}). When
   * absent, core publishes a copy to the dead-letter topic with {@link Driver.send} and then acks.
   */
  deadLetter?(envelope: Envelope): Promise<void>;
}

/** Where core's pull loop hands deliveries to the subscription runtime. */
export interface DeliverySink {
  /** A new delivery. The runtime queues it. */
  deliver(delivery: DriverDelivery): void;
  /** A failure the subscription cannot recover from by itself (it is logged and counted). */
  error(error: MqError): void;
}

/** A running pull loop, as the subscription runtime sees it. */
export interface DriverSubscription {
  pause(): void;
  resume(): void;
  /**
   * Stop intake for good and release the broker resources. Unsettled deliveries are given back to
   * the broker for redelivery (or left to expire); settle calls after close reject with CLOSED.
   */
  close(): Promise<void>;
}

/**
 * One message a {@link DriverReceiver} received. Drivers extend it with what they need to settle
 * the message (a receipt handle, a stream entry id, …); core hands the same object back to
 * {@link DriverReceiver.ack} and the other settle calls.
 */
export interface ReceivedMessage {
  readonly envelope: Envelope;
  /**
   * Deliveries of this message to this group so far, this one included (1-based): the broker's
   * own count (SQS ApproximateReceiveCount, RocketMQ deliveryAttempt, a stream's PEL count).
   * Core turns it into the handler's attempt, discounting deliveries it gave back unhandled.
   */
  readonly deliveryCount: number;
  /**
   * Names the message across its redeliveries to this group (a broker message id), unique within
   * the receiver's {@link DriverReceiver.scope}. Core keys its attempt ledger on it, recognises a
   * redelivery of a message still being handled, and re-acks a copy of one it acked. Not the
   * envelope id: a producer may publish one envelope id twice, and those are two messages.
   */
  readonly id: string;
  /** Serialisation lane for ordered subscriptions (FIFO message group); defaults to the key. */
  readonly orderingKey?: string | undefined;
  /** Broker-specific facts for logs and dead-letter headers. */
  readonly meta?: Readonly<Record<string, string>>;
}

/**
 * Per-message outcomes of a batch settle call, in input order (`undefined`: done), or nothing
 * when the whole batch succeeded. A rejected call fails every message of the batch.
 */
export type SettleResults = void | ReadonlyArray<MqError | undefined>;

/**
 * The pull side of the driver contract, in the spirit of go-cloud's pubsub driver: the driver
 * receives and settles in batches; core owns the rest, once for every broker: the receive loops
 * and their backoff, prefetch and backpressure, per-key lanes, batching of settles, lease
 * heartbeats, attempt accounting, redelivery while handled, and giving messages back on close.
 * A driver never retries on its own: it classifies its errors as {@link MqError} and core decides.
 */
export interface DriverReceiver<M extends ReceivedMessage = ReceivedMessage> {
  /** Largest `max` one {@link DriverReceiver.receive} call serves (SQS: 10). */
  readonly batchSize: number;
  /** Most messages in one settle call (SQS: 10). @default batchSize */
  readonly settleBatchSize?: number;
  /** Receive calls core keeps open at once on an unordered subscription (ordered: one). @default 1 */
  readonly concurrency?: number;
  /**
   * How long a received message stays reserved to this consumer before the broker hands it to
   * another (visibility timeout, invisible duration, claim idle time). While a message is
   * unsettled core calls {@link DriverReceiver.extend} every third of it. Absent: no lease.
   */
  readonly leaseMs?: number;
  /**
   * Where message ids are unique, for core's process-wide attempt ledger: the cluster and the
   * group (e.g. `${endpoints}/${namespace}\0${group}`), so that a subscription closed and opened
   * again, on this client or another of the process, still knows its messages.
   */
  readonly scope: string;
  /**
   * The broker may hand over again a message this process acked successfully (RocketMQ: a FIFO
   * queue popped again from an earlier unsettled message forgets the batch's acks). Core then
   * remembers acked ids (bounded, per process) and acks such a copy again without handing it to a
   * handler. Off by default: elsewhere an acked message comes back only as the rare duplicate of
   * at-least-once delivery, which `idempotent()` absorbs, and remembering every ack costs a write
   * per message. @default false
   */
  readonly redeliversAcked?: boolean;
  /**
   * Up to `max` messages, waiting (a long poll) until at least one arrived or the broker's wait
   * time passed (then `[]`). Resolves `[]` promptly when `signal` aborts; any message received
   * anyway must still be returned (core gives it back). Rejects with a classified MqError.
   */
  receive(max: number, signal: AbortSignal): Promise<readonly M[]>;
  /** Done: the broker may forget them. */
  ack(messages: readonly M[]): Promise<SettleResults>;
  /**
   * Deliver again after `delayMs` (0: as soon as the broker's shortest give-back allows), to this
   * group. Used for a handler's nack (the delivery counts as an attempt) and to give back
   * messages that never reached a handler (core discounts those from `deliveryCount`).
   */
  nack(messages: readonly M[], delayMs: number): Promise<SettleResults>;
  /**
   * Give back messages that never reached a handler (held behind a nacked message of their
   * ordered lane, or still held at close), to be delivered again after `delayMs`, without counting
   * a delivery (a later `deliveryCount` leaves it out). Absent: core gives back with nack() and,
   * since the broker then counts a delivery, discounts it in its attempt ledger (in this process).
   */
  release?(messages: readonly M[], delayMs: number): Promise<SettleResults>;
  /** Keep them reserved for another `leaseMs` from now (see {@link DriverReceiver.leaseMs}). */
  extend?(messages: readonly M[], leaseMs: number): Promise<SettleResults>;
  /**
   * Optional native dead-lettering. When absent, core publishes a copy to the dead-letter topic
   * with {@link Driver.send} and then acks.
   */
  deadLetter?(message: M, envelope: Envelope): Promise<void>;
  /** Stop for good and release the broker resources (core settled or gave back every message first). */
  close(): Promise<void>;
}

/** A native broker transaction (see {@link Capabilities.transactions}). */
export interface DriverTransaction {
  /** Stage messages; they become visible on commit only. */
  send(envelopes: readonly Envelope[]): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** Context core gives a driver when creating it. */
export interface DriverContext {
  readonly logger: Logger;
}

/** The contract every broker adapter implements. */
export interface Driver {
  /** Short adapter name for logs and metrics: `memory`, `kafka`, `rabbitmq`, … */
  readonly name: string;
  /**
   * `messaging.system` of the send spans and metrics when sends go to another system than the one
   * consumed from (SQS with SNS: `aws.sns`; consuming stays the adapter's, `aws_sqs`). Absent: the
   * adapter's own, as for receives.
   */
  readonly sendSystem?: string | undefined;
  readonly capabilities: Capabilities;
  /** The native client object, for what mqkit does not cover. */
  readonly native: unknown;
  /**
   * Send messages and resolve once the broker durably accepted each (or refused it). Must not
   * reject for per-message failures: report them in the outcome at the same index. Messages with
   * the same topic and key must reach the broker in the order given (send them one after another
   * where the client would send concurrently); core never has two calls with the same key open.
   */
  send(envelopes: readonly Envelope[]): Promise<SendOutcome[]>;
  /**
   * Start receiving `spec.topic` as `spec.group`, declaring what the broker needs (groups,
   * queues, bindings). Core runs the consumer on top (see {@link DriverReceiver}).
   */
  receiver(spec: SubscriptionSpec): Promise<DriverReceiver>;
  /** Start a native transaction; present only when `capabilities.transactions`. */
  beginTransaction?(): Promise<DriverTransaction>;
  /** Declare and verify topics, groups and dead-letter topics (see topology.ts); absent: the adapter cannot. */
  readonly topology?: DriverTopology;
  /** Close connections. Called once, after every subscription was closed. */
  close(): Promise<void>;
}

/** What an adapter package exports: the URL schemes it serves and how to make its driver. */
export interface Adapter {
  /** URL schemes without the colon, e.g. `['amqp', 'amqps']`. */
  readonly schemes: readonly string[];
  /**
   * Validate the URL (as the user wrote it; e.g. `kafka://h1:9092,h2:9092` is no WHATWG URL) and
   * the options, then connect. Must throw MqError CONFIG on bad input, without echoing secrets
   * (use `redactUrl`).
   */
  create(url: string, options: Readonly<Record<string, unknown>>, context: DriverContext): Promise<Driver>;
}
