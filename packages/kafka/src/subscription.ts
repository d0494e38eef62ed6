/**
 * One mqkit subscription on Kafka: a consumer-group member whose fetched records are held in
 * memory until core settles them.
 *
 * - ack: the offset joins its partition's contiguous settled prefix, which is committed soon
 *   (`commitIntervalMs` after the first advance, coalescing everything acked meanwhile; never
 *   through kafkajs' resolveOffset, whose uncommitted offsets are dropped on rebalance,
 *   tulios/kafkajs#28/#1046).
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
import type { ConsumerSeam, FetchedBatch, FetchedRecord, KafkaClientSeam } from './client/seam.ts';
import { nextOffset, OffsetTracker, type TrackedOffset } from './offset-tracker.ts';
import { deliverAtOf, fromRecord } from './records.ts';

/** Resolved subscription settings. */
export interface KafkaSubscriptionSettings {
  readonly groupId: string;
  readonly fromBeginning: boolean;
  readonly sessionTimeout: number;
  readonly heartbeatInterval: number;
  readonly maxWaitTimeInMs: number;
  readonly maxBufferedMessages: number;
  readonly joinTimeoutMs: number;
  /** How long acks accumulate before their contiguous position is committed; 0 = at once. */
  readonly commitIntervalMs: number;
}

/**
 * A fetched record held until core settles it (one object per record, reused across redeliveries).
 * It keeps the client's record and decodes it into an envelope only when it is handed to core:
 * up to `maxBufferedMessages` records wait between fetch and hand-over, and decoding them all up
 * front would keep thousands of envelopes (and core's queue entries) alive through young-generation
 * GCs, whose cost grows with what survives them.
 */
class Held implements TrackedOffset {
  readonly offset: string;
  readonly state: PartitionState;
  readonly lane: string | undefined;
  /** The fetched record until it is decoded. */
  record: FetchedRecord | undefined;
  envelope: Envelope | undefined = undefined;
  attempt: number;
  dueAt: number;
  timer: NodeJS.Timeout | undefined = undefined;
  /** Acked, or dropped by a rebalance/close: no longer outstanding. */
  done = false;

  constructor(record: FetchedRecord, state: PartitionState, lane: string | undefined, attempt: number, dueAt: number) {
    this.offset = record.offset;
    this.record = record;
    this.state = state;
    this.lane = lane;
    this.attempt = attempt;
    this.dueAt = dueAt;
  }
}

interface PartitionState {
  readonly partition: number;
  /** `partition` as text, for each delivery's meta. */
  readonly partitionText: string;
  /** Fetched records in offset order (an undecodable one is settled when it would be handed over). */
  readonly offsets: OffsetTracker<Held>;
  live: boolean;
}

/** What a settle returns: one already-resolved promise for all (a settle completes synchronously). */
const SETTLED: Promise<void> = Promise.resolve();

/**
 * One hand-over of a held record to core. A class (methods on the prototype) rather than an object
 * literal with closures: one is made per delivered message.
 */
class KafkaDelivery implements DriverDelivery {
  readonly envelope: Envelope;
  readonly attempt: number;
  readonly orderingKey: string | undefined;
  readonly meta: Readonly<Record<string, string>>;
  readonly #held: Held;
  readonly #owner: KafkaSubscription;
  #settled = false;

  constructor(owner: KafkaSubscription, held: Held, envelope: Envelope) {
    this.#owner = owner;
    this.#held = held;
    this.envelope = envelope;
    this.attempt = held.attempt;
    this.orderingKey = held.lane;
    this.meta = { partition: held.state.partitionText, offset: held.offset };
  }

  ack(): Promise<void> {
    return this.#settle(-1);
  }

  nack(delayMs: number): Promise<void> {
    return this.#settle(Math.max(0, delayMs));
  }

  /** `delayMs` < 0 acks. Settles once; after close it rejects (the record comes again). */
  #settle(delayMs: number): Promise<void> {
    if (!this.#owner.open) return Promise.reject(new MqError('CLOSED', 'kafka subscription is closed; the message will be redelivered'));
    if (this.#settled) return Promise.reject(new MqError('INVALID_MESSAGE', 'delivery was already settled'));
    this.#settled = true;
    // Dropped by a rebalance: the group redelivers it; nothing to commit here.
    if (!this.#held.done) {
      if (delayMs < 0) this.#owner.finish(this.#held);
      else this.#owner.redeliver(this.#held, delayMs);
    }
    return SETTLED;
  }
}

const COMMIT_RETRY_MS = 500;

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

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
  /** Per partition, the last offset of the contiguous settled prefix not yet committed. */
  readonly #toCommit = new Map<number, string>();
  #commitTimer: NodeJS.Timeout | undefined;
  #commitLoop: Promise<void> | undefined;
  #outstanding = 0;
  #corePaused = false;
  /** Due records not yet handed to core (core paused intake), in fetch order from `#readyHead`. */
  #ready: Array<Held | undefined> = [];
  #readyHead = 0;
  #drainQueued = false;
  #draining = false;
  /** Set while the buffer is full: settles when fetching may go on. */
  #room: { promise: Promise<void>; resolve(): void } | undefined;
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
    this.#ready = [];
    this.#readyHead = 0;
    for (const p of this.#toCommit.keys()) if (!partitions.includes(p)) this.#toCommit.delete(p);
    this.#logger.debug({ topic: this.#spec.topic, group: this.#settings.groupId, partitions }, 'kafka partitions assigned');
    this.#joined?.();
    this.#joined = undefined;
    this.#checkBuffer();
  }

  #dropPartition(state: PartitionState): void {
    state.live = false;
    for (const entry of state.offsets.unsettled()) {
      if (entry.done) continue;
      clearTimeout(entry.timer);
      entry.done = true;
      this.#outstanding -= 1;
    }
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
      state = { partition, partitionText: String(partition), offsets: new OffsetTracker<Held>(), live: true };
      this.#partitions.set(partition, state);
    }
    return state;
  }

  /** Takes a fetched batch; returns a promise (fetch no more until it settles) when the buffer is full. */
  #onBatch(batch: FetchedBatch): Promise<void> | undefined {
    if (!this.#open) return undefined;
    const { partition, records } = batch;
    const state = this.#partition(partition);
    const ordered = this.#spec.ordered;
    const attempts = this.#attempts;
    for (let i = 0; i < records.length; i += 1) {
      const record = records[i]!;
      const attempt = attempts.size === 0 ? 1 : (attempts.get(`${partition}:${record.offset}`) ?? 1);
      // Only what placement needs is read now (delay, and the key for ordered lanes).
      const lane = ordered && record.key && record.key.length > 0 ? record.key.toString() : undefined;
      const held = new Held(record, state, lane, attempt, deliverAtOf(record));
      if (!state.offsets.add(held)) continue;
      this.#outstanding += 1;
      if (lane === undefined) {
        this.#schedule(held);
      } else {
        const queue = this.#lanes.get(lane);
        if (queue) queue.push(held);
        else {
          this.#lanes.set(lane, [held]);
          this.#schedule(held);
        }
      }
    }
    this.#drain();
    this.#checkBuffer();
    return this.#room?.promise;
  }

  /** Queues `held` for core now, or when it is due. */
  #schedule(held: Held): void {
    const wait = held.dueAt === 0 ? 0 : held.dueAt - Date.now();
    if (wait <= 0) {
      this.#ready.push(held);
      return;
    }
    held.timer = setTimeout(() => {
      held.timer = undefined;
      this.#ready.push(held);
      this.#drain();
    }, wait);
  }

  /**
   * Hands due records to core until core pauses intake: core's queue stays short and a record is
   * decoded just before its handler runs (see {@link Held}).
   */
  #drain(): void {
    // A settle made synchronously inside deliver() comes back here: the running loop covers it.
    if (this.#draining) return;
    this.#draining = true;
    try {
      const ready = this.#ready;
      while (this.#readyHead < ready.length && !this.#corePaused && this.#open) {
        const held = ready[this.#readyHead]!;
        ready[this.#readyHead] = undefined;
        this.#readyHead += 1;
        if (!held.done) this.#hand(held);
      }
      const head = this.#readyHead;
      if (head >= ready.length) {
        ready.length = 0;
        this.#readyHead = 0;
      } else if (head > 1024 && head * 2 > ready.length) {
        this.#ready = ready.slice(head);
        this.#readyHead = 0;
      }
    } finally {
      this.#draining = false;
    }
  }

  #hand(held: Held): void {
    let envelope = held.envelope;
    if (envelope === undefined) {
      try {
        envelope = fromRecord(this.#spec.topic, held.state.partition, held.record!);
      } catch (err) {
        this.#sink.error(new MqError('INTERNAL', `kafka: undecodable record at ${held.state.partition}:${held.offset}`, { cause: err }));
        this.finish(held); // nothing core could do with it: skip it like an ack
        return;
      }
      held.envelope = envelope;
      held.record = undefined;
    }
    this.#sink.deliver(new KafkaDelivery(this, held, envelope));
  }

  /** Whether settles are still accepted (not closed). @internal for {@link KafkaDelivery} */
  get open(): boolean {
    return this.#open;
  }

  /** A nack: hold the record uncommitted and hand it over again after `delayMs`. @internal */
  redeliver(held: Held, delayMs: number): void {
    held.attempt += 1;
    this.#attempts.set(`${held.state.partition}:${held.offset}`, held.attempt);
    held.dueAt = Date.now() + delayMs;
    this.#schedule(held);
    this.#drain();
  }

  /** An ack: the record joins its partition's settled prefix. @internal for {@link KafkaDelivery} */
  finish(held: Held): void {
    held.done = true;
    if (held.attempt > 1) this.#attempts.delete(`${held.state.partition}:${held.offset}`);
    this.#outstanding -= 1;
    if (held.lane !== undefined) {
      const queue = this.#lanes.get(held.lane);
      if (queue && queue[0] === held) {
        queue.shift();
        const next = queue[0];
        if (next) {
          this.#schedule(next);
          this.#drain();
        } else this.#lanes.delete(held.lane);
      }
    }
    this.#complete(held.state);
    this.#checkBuffer();
  }

  #complete(state: PartitionState): void {
    const last = state.offsets.advance();
    if (last === undefined || !state.live) return;
    this.#toCommit.set(state.partition, last);
    this.#scheduleCommit();
  }

  /**
   * Commits soon: after `commitIntervalMs`, so that the acks of that window share one commit
   * request (a commit per ack wave costs a broker round trip and encoding each). One commit at a
   * time; positions that advance meanwhile go into the next one.
   */
  #scheduleCommit(): void {
    if (this.#commitLoop || this.#commitTimer || !this.#open) return;
    const interval = this.#settings.commitIntervalMs;
    if (interval <= 0) {
      this.#startCommit();
      return;
    }
    this.#commitTimer = setTimeout(() => {
      this.#commitTimer = undefined;
      this.#startCommit();
    }, interval);
  }

  #startCommit(): void {
    this.#commitLoop ??= this.#commitOnce().finally(() => {
      this.#commitLoop = undefined;
      if (this.#toCommit.size > 0) this.#scheduleCommit();
    });
  }

  /** Commits the latest positions; on failure keeps them (unless newer ones arrived) and waits a little. */
  async #commitOnce(): Promise<void> {
    if (this.#toCommit.size === 0) return;
    const batch = [...this.#toCommit];
    this.#toCommit.clear();
    try {
      await this.#consumer.commit({
        topic: this.#spec.topic,
        partitions: batch.map(([partition, last]) => ({ partition, offset: nextOffset(last) })),
      });
    } catch (err) {
      // Rebalancing or reconnecting: keep the newest position and try again shortly. If the
      // partition moved away, the next assignment drops it; redelivery covers the rest.
      for (const [partition, last] of batch) {
        if (!this.#toCommit.has(partition)) this.#toCommit.set(partition, last);
      }
      this.#logger.debug({ err: this.#seam.classify(err), topic: this.#spec.topic }, 'kafka commit failed; retrying');
      if (!this.#open) return;
      await new Promise((r) => setTimeout(r, COMMIT_RETRY_MS));
    }
  }

  /**
   * The offsets a transaction may commit for the delivery at `partition:offset`, as if it were
   * acked: the contiguous position, never past an unfinished earlier message. Undefined when the
   * partition is no longer held here (rebalanced) or nothing before it is settled yet.
   */
  transactionOffsets(partition: number, offset: string): { partition: number; offset: string } | undefined {
    const state = this.#partitions.get(partition);
    if (!this.#open || !state?.live) return undefined;
    const position = state.offsets.positionIfCompleted(offset);
    return position === undefined ? undefined : { partition, offset: position };
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
   * Fetching stops while the adapter holds `maxBufferedMessages` records (fetched, not yet acked)
   * and goes on once that fell to half: the seam holds the fetch loop on `#room` (not kafkajs'
   * pause, which stalls for `maxWaitTimeInMs` per fetch round). Core's pause requests only stop
   * the hand-over (records wait in `#ready`, counted here), never the fetching: core's queue is
   * small and toggles per message.
   */
  #checkBuffer(): void {
    const max = this.#settings.maxBufferedMessages;
    if (this.#room === undefined) {
      if (this.#outstanding >= max && this.#open) this.#room = deferred();
    } else if (this.#outstanding <= max / 2 || !this.#open) {
      this.#room.resolve();
      this.#room = undefined;
    }
  }

  /** Core's queue is full: hold records back until {@link resume}. */
  pause(): void {
    this.#corePaused = true;
  }

  resume(): void {
    this.#corePaused = false;
    // Core asks from inside its own bookkeeping: hand the next records over right after it.
    if (!this.#drainQueued && this.#readyHead < this.#ready.length) {
      this.#drainQueued = true;
      queueMicrotask(() => {
        this.#drainQueued = false;
        this.#drain();
      });
    }
  }

  async close(): Promise<void> {
    if (!this.#open) return;
    // From here settles reject with CLOSED. Flush what core already acked, then leave the group:
    // the rest stays uncommitted and is redelivered to the remaining members.
    this.#open = false;
    this.#consumer.pause();
    clearTimeout(this.#commitTimer);
    this.#commitTimer = undefined;
    this.#checkBuffer(); // a fetch loop waiting for room returns now
    if (this.#commitLoop) await this.#commitLoop;
    if (this.#toCommit.size > 0) await this.#commitOnce();
    for (const state of this.#partitions.values()) this.#dropPartition(state);
    this.#partitions.clear();
    this.#ready = [];
    this.#readyHead = 0;
    this.#lanes.clear();
    await this.#consumer.disconnect();
    this.#onClose();
  }
}
