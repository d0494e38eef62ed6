/**
 * One mqkit subscription on Kafka: a consumer-group member whose fetched records are held in
 * memory until core settles them.
 *
 * - ack: the offset joins its partition's contiguous settled prefix, which is committed eagerly
 *   (kafkajs drops resolved-but-uncommitted offsets on rebalance, tulios/kafkajs#28/#1046).
 * - nack(delay): "hold and redeliver". The record stays uncommitted (so a crash redelivers it) and
 *   is handed to core again after the delay with attempt + 1, tracked by the adapter. Later records
 *   keep flowing; with `ordered`, later records of the same key wait behind it.
 * - delay on publish: a record whose `x-mqkit-deliver-at` lies ahead is held the same way.
 * - rebalance: each (re)assignment refetches from the committed offsets, so everything held is
 *   dropped and settles of dropped deliveries become no-ops (at-least-once, never a commit of
 *   unfinished work).
 */
import {
  MqError,
  type DeliverySink,
  type DriverDelivery,
  type DriverSubscription,
  type Envelope,
  type Logger,
  type SubscriptionSpec,
} from '@mqkit/core/driver';
import type { ConsumerSeam, FetchedBatch, KafkaClientSeam } from './client/seam.ts';
import { OffsetTracker } from './offset-tracker.ts';
import { fromRecord } from './records.ts';

/** Resolved subscription settings. */
export interface KafkaSubscriptionSettings {
  readonly groupId: string;
  readonly fromBeginning: boolean;
  readonly sessionTimeout: number;
  readonly heartbeatInterval: number;
  readonly maxWaitTimeInMs: number;
  readonly maxBufferedMessages: number;
  readonly joinTimeoutMs: number;
}

interface Held {
  readonly partition: number;
  readonly offset: bigint;
  readonly state: PartitionState;
  readonly envelope: Envelope;
  readonly lane: string | undefined;
  attempt: number;
  dueAt: number;
  timer: NodeJS.Timeout | undefined;
  done: boolean;
}

interface PartitionState {
  readonly partition: number;
  readonly offsets: OffsetTracker;
  readonly held: Set<Held>;
  live: boolean;
}

const COMMIT_RETRY_MS = 500;

export class KafkaSubscription implements DriverSubscription {
  readonly #spec: SubscriptionSpec;
  readonly #sink: DeliverySink;
  readonly #settings: KafkaSubscriptionSettings;
  readonly #logger: Logger;
  readonly #consumer: ConsumerSeam;
  readonly #seam: KafkaClientSeam;
  readonly #partitions = new Map<number, PartitionState>();
  /** Ordered subscriptions: per key, the held records in offset order; the head is out. */
  readonly #lanes = new Map<string, Held[]>();
  /** Next attempt per `partition:offset`, kept across rebalances inside this member. */
  readonly #attempts = new Map<string, number>();
  readonly #toCommit = new Map<number, bigint>();
  #commitLoop: Promise<void> | undefined;
  #outstanding = 0;
  #corePaused = false;
  #bufferPaused = false;
  #fetchPaused = false;
  #open = true;
  #joined: (() => void) | undefined;
  readonly #onClose: () => void;

  constructor(
    seam: KafkaClientSeam,
    spec: SubscriptionSpec,
    sink: DeliverySink,
    settings: KafkaSubscriptionSettings,
    logger: Logger,
    onClose: () => void,
  ) {
    this.#seam = seam;
    this.#spec = spec;
    this.#sink = sink;
    this.#settings = settings;
    this.#logger = logger;
    this.#onClose = onClose;
    this.#consumer = seam.consumer({
      groupId: settings.groupId,
      topic: spec.topic,
      fromBeginning: settings.fromBeginning,
      sessionTimeout: settings.sessionTimeout,
      heartbeatInterval: settings.heartbeatInterval,
      maxWaitTimeInMs: settings.maxWaitTimeInMs,
    });
  }

  /** Joins the group; resolves after the first assignment (or `joinTimeoutMs`). */
  async start(): Promise<void> {
    const joined = new Promise<void>((resolve) => {
      this.#joined = resolve;
    });
    await this.#consumer.start({
      onBatch: (batch) => this.#onBatch(batch),
      onAssignment: (assigned) => this.#onAssignment(assigned[this.#spec.topic] ?? []),
      onCrash: (error, restarting) => {
        const err = this.#seam.classify(error, { topic: this.#spec.topic, group: this.#spec.group });
        this.#logger.warn({ err, topic: this.#spec.topic, restarting }, 'kafka consumer crashed; restarting');
        this.#sink.error(err);
      },
    });
    if (this.#settings.joinTimeoutMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.#settings.joinTimeoutMs);
      });
      await Promise.race([joined, timeout]);
      clearTimeout(timer);
    }
  }

  #onAssignment(partitions: readonly number[]): void {
    // kafkajs restarts every assigned partition from its committed offset: drop what we hold.
    for (const state of this.#partitions.values()) this.#dropPartition(state);
    this.#partitions.clear();
    for (const p of this.#toCommit.keys()) if (!partitions.includes(p)) this.#toCommit.delete(p);
    this.#logger.debug({ topic: this.#spec.topic, group: this.#settings.groupId, partitions }, 'kafka partitions assigned');
    this.#joined?.();
    this.#joined = undefined;
    this.#checkBuffer();
  }

  #dropPartition(state: PartitionState): void {
    state.live = false;
    for (const held of state.held) {
      clearTimeout(held.timer);
      if (!held.done) this.#outstanding -= 1;
      held.done = true;
    }
    state.held.clear();
    if (this.#spec.ordered) {
      for (const [lane, queue] of this.#lanes) {
        const kept = queue.filter((h) => h.state !== state);
        if (kept.length === 0) this.#lanes.delete(lane);
        else if (kept.length !== queue.length) this.#lanes.set(lane, kept);
      }
    }
  }

  #partition(partition: number): PartitionState {
    let state = this.#partitions.get(partition);
    if (!state) {
      state = { partition, offsets: new OffsetTracker(), held: new Set(), live: true };
      this.#partitions.set(partition, state);
    }
    return state;
  }

  #onBatch(batch: FetchedBatch): void {
    if (!this.#open) return;
    const state = this.#partition(batch.partition);
    for (const record of batch.records) {
      const offset = BigInt(record.offset);
      if (!state.offsets.add(offset)) continue;
      let decoded;
      try {
        decoded = fromRecord(batch.topic, batch.partition, record);
      } catch (err) {
        this.#sink.error(new MqError('INTERNAL', `kafka: undecodable record at ${batch.partition}:${record.offset}`, { cause: err }));
        this.#complete(state, offset);
        continue;
      }
      const held: Held = {
        partition: batch.partition,
        offset,
        state,
        envelope: decoded.envelope,
        lane: this.#spec.ordered ? decoded.envelope.key : undefined,
        attempt: this.#attempts.get(`${batch.partition}:${record.offset}`) ?? 1,
        dueAt: decoded.deliverAt,
        timer: undefined,
        done: false,
      };
      state.held.add(held);
      this.#outstanding += 1;
      if (held.lane === undefined) {
        this.#schedule(held);
      } else {
        const queue = this.#lanes.get(held.lane);
        if (queue) queue.push(held);
        else {
          this.#lanes.set(held.lane, [held]);
          this.#schedule(held);
        }
      }
    }
    this.#checkBuffer();
  }

  /** Hands `held` to core now, or when it is due. */
  #schedule(held: Held): void {
    const wait = held.dueAt - Date.now();
    if (wait <= 0) {
      this.#hand(held);
      return;
    }
    held.timer = setTimeout(() => {
      held.timer = undefined;
      this.#hand(held);
    }, wait);
  }

  #hand(held: Held): void {
    if (held.done || !this.#open) return;
    let settled = false;
    const guard = (action: () => void): Promise<void> => {
      if (!this.#open) return Promise.reject(new MqError('CLOSED', 'kafka subscription is closed; the message will be redelivered'));
      if (settled) return Promise.reject(new MqError('INVALID_MESSAGE', 'delivery was already settled'));
      settled = true;
      // Dropped by a rebalance: the group redelivers it; nothing to commit here.
      if (held.done) return Promise.resolve();
      action();
      return Promise.resolve();
    };
    const delivery: DriverDelivery = {
      envelope: held.envelope,
      attempt: held.attempt,
      orderingKey: held.lane,
      meta: { partition: String(held.partition), offset: String(held.offset) },
      ack: () => guard(() => this.#finish(held)),
      nack: (delayMs) =>
        guard(() => {
          held.attempt += 1;
          this.#attempts.set(`${held.partition}:${held.offset}`, held.attempt);
          held.dueAt = Date.now() + Math.max(0, delayMs);
          this.#schedule(held);
        }),
    };
    this.#sink.deliver(delivery);
  }

  #finish(held: Held): void {
    held.done = true;
    held.state.held.delete(held);
    this.#attempts.delete(`${held.partition}:${held.offset}`);
    this.#outstanding -= 1;
    if (held.lane !== undefined) {
      const queue = this.#lanes.get(held.lane);
      if (queue && queue[0] === held) {
        queue.shift();
        const next = queue[0];
        if (next) this.#schedule(next);
        else this.#lanes.delete(held.lane);
      }
    }
    this.#complete(held.state, held.offset);
    this.#checkBuffer();
  }

  #complete(state: PartitionState, offset: bigint): void {
    const position = state.offsets.complete(offset);
    if (position === undefined || !state.live) return;
    this.#toCommit.set(state.partition, position);
    this.#commitLoop ??= this.#commitAll().finally(() => {
      this.#commitLoop = undefined;
    });
  }

  /** Commits the latest positions, coalescing acks that arrive while a commit is in flight. */
  async #commitAll(): Promise<void> {
    while (this.#toCommit.size > 0) {
      const batch = [...this.#toCommit];
      this.#toCommit.clear();
      try {
        await this.#consumer.commit({
          topic: this.#spec.topic,
          partitions: batch.map(([partition, offset]) => ({ partition, offset: offset.toString() })),
        });
      } catch (err) {
        // Rebalancing or reconnecting: keep the newest position and try again shortly. If the
        // partition moved away, the next assignment drops it; redelivery covers the rest.
        for (const [partition, offset] of batch) {
          const newer = this.#toCommit.get(partition);
          if (newer === undefined || newer < offset) this.#toCommit.set(partition, offset);
        }
        this.#logger.debug({ err: this.#seam.classify(err), topic: this.#spec.topic }, 'kafka commit failed; retrying');
        if (!this.#open) return;
        await new Promise((r) => setTimeout(r, COMMIT_RETRY_MS));
      }
    }
  }

  /**
   * The offsets a transaction may commit for the delivery at `partition:offset`, as if it were
   * acked: the contiguous position, never past an unfinished earlier message. Undefined when the
   * partition is no longer held here (rebalanced) or nothing before it is settled yet.
   */
  transactionOffsets(partition: number, offset: bigint): { partition: number; offset: string } | undefined {
    const state = this.#partitions.get(partition);
    if (!this.#open || !state?.live) return undefined;
    const position = state.offsets.positionIfCompleted(offset);
    return position === undefined ? undefined : { partition, offset: position.toString() };
  }

  get groupId(): string {
    return this.#settings.groupId;
  }

  get topic(): string {
    return this.#spec.topic;
  }

  get group(): string {
    return this.#spec.group;
  }

  /**
   * Fetching pauses when the adapter holds `maxBufferedMessages` records and resumes at half of
   * that. Core's pause requests count from half the bound on: a fetched batch (up to ~1 MiB per
   * partition) routinely overfills core's small queue for a moment, and toggling kafkajs' pause per
   * message makes it drop and refetch batches (measured: consumption became latency-bound).
   */
  #checkBuffer(): void {
    const max = this.#settings.maxBufferedMessages;
    if (!this.#bufferPaused && this.#outstanding >= max) this.#bufferPaused = true;
    else if (this.#bufferPaused && this.#outstanding <= max / 2) this.#bufferPaused = false;
    this.#applyPause();
  }

  #applyPause(): void {
    if (!this.#open) return;
    const half = this.#settings.maxBufferedMessages / 2;
    const paused = this.#bufferPaused || (this.#corePaused && this.#outstanding >= half);
    if (paused === this.#fetchPaused) return;
    this.#fetchPaused = paused;
    if (paused) this.#consumer.pause();
    else this.#consumer.resume();
  }

  pause(): void {
    this.#corePaused = true;
    this.#applyPause();
  }

  resume(): void {
    this.#corePaused = false;
    this.#applyPause();
  }

  async close(): Promise<void> {
    if (!this.#open) return;
    // From here settles reject with CLOSED. Flush what core already acked, then leave the group:
    // the rest stays uncommitted and is redelivered to the remaining members.
    this.#open = false;
    this.#consumer.pause();
    if (this.#commitLoop) await this.#commitLoop;
    if (this.#toCommit.size > 0) await this.#commitAll();
    for (const state of this.#partitions.values()) this.#dropPartition(state);
    this.#partitions.clear();
    this.#lanes.clear();
    await this.#consumer.disconnect();
    this.#onClose();
  }
}
