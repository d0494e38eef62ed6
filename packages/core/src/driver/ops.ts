/**
 * The operations part of the adapter contract, for tools such as the `mqkit` CLI: read a topic
 * (a dead-letter topic) without consuming it, remove messages once they were replayed, purge, and
 * report the backlog of consumer groups. Optional and separate from {@link Driver}: an adapter
 * package exports `ops()` next to `adapter()`, and its implementation opens its own connection
 * (an administrative one), so that nothing here touches the publish or consume paths.
 *
 * Dead letters are what core's subscription runtime publishes to the dead-letter topic
 * (`<topic>-dlq` by default) with the {@link HEADERS} `x-mqkit-dead-letter-reason`,
 * `x-mqkit-error`, `x-mqkit-attempts`, `x-mqkit-original-topic`, `x-mqkit-original-group` and
 * `x-mqkit-dead-lettered-at`; {@link deadLetterInfo} reads them back.
 */
import { MqError } from '../errors.ts';
import { HEADERS, RESERVED_HEADER_PREFIX, type Envelope } from '../message.ts';
import type { DriverContext } from './driver.ts';

/** What an adapter's operations can do. Tools check it and refuse clearly where it cannot. */
export interface OpsCapabilities {
  /**
   * How {@link DriverOps.read} reads: `peek` leaves the broker untouched (stream, log, retained
   * list); `hold` takes the messages from the queue for the time of the read and gives them back
   * (the broker counts a delivery, and other consumers of that queue do not see them meanwhile).
   */
  readonly read: 'peek' | 'hold';
  /**
   * Which messages {@link MessageBatch.remove} can remove: `any` one of them; `prefix` only from the
   * oldest on without a gap (a log truncated at an offset, Kafka); `none`.
   */
  readonly remove: 'any' | 'prefix' | 'none';
  /** {@link DriverOps.listTopics} can name topics (RabbitMQ over AMQP cannot enumerate queues). */
  readonly listTopics: boolean;
  /** {@link DriverOps.backlog} can find a topic's groups when no group is given. */
  readonly listGroups: boolean;
}

/** One message as {@link DriverOps.read} found it. */
export interface StoredMessage {
  /** The message as mqkit decoded it (adapter wire headers stripped, as a handler would see it). */
  readonly envelope: Envelope;
  /** Where it is, for people (stream entry id, `partition:offset`, queue position). */
  readonly position?: string | undefined;
}

/** The messages of one {@link DriverOps.read}, held (or just seen) until {@link MessageBatch.release}. */
export interface MessageBatch {
  readonly messages: readonly StoredMessage[];
  /**
   * Removes these messages (from this batch) from the topic for good: call it only after what you
   * did with them (a replay) was confirmed. UNSUPPORTED where the broker cannot (see
   * {@link OpsCapabilities.remove}).
   */
  remove(messages: readonly StoredMessage[]): Promise<void>;
  /** Gives back every message of the batch not removed; the batch is done. Idempotent. */
  release(): Promise<void>;
}

/** Backlog of one consumer group (one row per partition where the broker has them). */
export interface BacklogRow {
  readonly topic: string;
  readonly group: string;
  /** Kafka partition, RocketMQ queue; absent where the broker keeps one queue per group. */
  readonly partition?: string | undefined;
  /** Messages the group has not yet settled (ready + in flight where the broker tells both). */
  readonly backlog: number;
  /** Waiting to be delivered, where the broker tells. */
  readonly ready?: number | undefined;
  /** Delivered and not yet settled, where the broker tells. */
  readonly inFlight?: number | undefined;
  /** Consumers attached, where the broker tells. */
  readonly consumers?: number | undefined;
}

/** Operations on one broker. Rejects with classified {@link MqError}s (NOT_FOUND for a missing topic). */
export interface DriverOps {
  /** Adapter name, as {@link Driver.name}. */
  readonly name: string;
  readonly capabilities: OpsCapabilities;
  /** Names of the topics the broker holds (in mqkit's terms). UNSUPPORTED unless {@link OpsCapabilities.listTopics}. */
  listTopics(): Promise<readonly string[]>;
  /**
   * Messages in the topic (its dead-letter store); NOT_FOUND when it does not exist. `group`, here
   * and below: where the broker keeps a copy of a topic per consumer group (SQS with SNS: the
   * queue `<topic>__<group>`), that group's copy; ignored elsewhere. Without it such a broker uses
   * the only copy there is, or rejects CONFIG naming the groups.
   */
  depth(topic: string, group?: string): Promise<number>;
  /** Up to `limit` messages from the oldest on (see {@link OpsCapabilities.read}). */
  read(topic: string, limit: number, group?: string): Promise<MessageBatch>;
  /** Removes every message of the topic; resolves how many (approximately where the broker does not tell). */
  purge(topic: string, group?: string): Promise<number | undefined>;
  /**
   * Backlog per group of `topic` (and per partition); every group of every topic when the broker
   * can list them. NOT_FOUND for a missing topic or group; UNSUPPORTED for what it cannot list.
   */
  backlog(topic: string | undefined, group: string | undefined): Promise<readonly BacklogRow[]>;
  close(): Promise<void>;
}

/** What an adapter package exports as `ops()`: the URL schemes and how to open its {@link DriverOps}. */
export interface OpsAdapter {
  readonly schemes: readonly string[];
  /** Validates the URL and options as the adapter's `create()` does, then connects. */
  create(url: string, options: Readonly<Record<string, unknown>>, context: DriverContext): Promise<DriverOps>;
}

/** What a dead letter's mqkit headers say (see {@link HEADERS}). */
export interface DeadLetterInfo {
  /** `handler-failed`, `decode-failed`, `max-attempts`, or the reason a handler gave; `unknown` when absent. */
  readonly reason: string;
  readonly error?: string | undefined;
  readonly attempts?: number | undefined;
  readonly originalTopic?: string | undefined;
  readonly originalGroup?: string | undefined;
  /** Epoch ms it was dead-lettered (else its publish time). */
  readonly deadLetteredAt: number;
}

/** Reads a dead letter's mqkit headers. */
export function deadLetterInfo(envelope: Envelope): DeadLetterInfo {
  const h = envelope.headers;
  const attempts = Number(h[HEADERS.deadLetterAttempts]);
  const at = Date.parse(h[HEADERS.deadLetteredAt] ?? '');
  return {
    reason: h[HEADERS.deadLetterReason] ?? 'unknown',
    error: h[HEADERS.deadLetterError],
    attempts: Number.isFinite(attempts) && attempts > 0 ? attempts : undefined,
    originalTopic: h[HEADERS.originalTopic],
    originalGroup: h[HEADERS.originalGroup],
    deadLetteredAt: Number.isFinite(at) ? at : envelope.timestamp,
  };
}

/**
 * The application headers of a dead letter, as its first publish carried them: without the
 * dead-letter headers and the broker facts core added (every `x-mqkit-` name), without
 * `content-type` and trace context. What a replay publishes again.
 */
export function applicationHeaders(envelope: Envelope): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(envelope.headers)) {
    const lower = name.toLowerCase();
    // The replay's own publish writes content type and trace context afresh.
    if (lower.startsWith(RESERVED_HEADER_PREFIX) || lower === HEADERS.contentType || lower === HEADERS.traceparent || lower === HEADERS.tracestate) continue;
    out[name] = value;
  }
  return out;
}

/** UNSUPPORTED for an operation the broker cannot do, naming the adapter and why. */
export function opsUnsupported(adapter: string, what: string, why: string): MqError {
  return new MqError('UNSUPPORTED', `${adapter}: cannot ${what}: ${why}`);
}
