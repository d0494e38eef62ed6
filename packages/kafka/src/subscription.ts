/**
 * One mqkit subscription on Kafka, as a pull receiver ({@link DriverReceiver}): a consumer-group
 * member whose fetched records are held in memory until core settles them. Core's
 * PullSubscription calls `receive(max)` with room in its in-flight budget; the records due (and
 * recorded as taken, see below) go out up to `max`, the rest wait here.
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
 * - attempts survive crashes: commits of a partition (same position) record in the offset metadata
 *   which records were taken (see attempt-log.ts). First deliveries are handed over without waiting
 *   for that record, but at most `lookAhead` offsets past the last recorded one; redeliveries and
 *   suspects wait for it. A new owner reads the log back on assignment; after an unclean hand-over
 *   it treats every unacked record up to the recorded end + the look-ahead as a suspect.
 */
import {
  MqError,
  type DriverReceiver,
  type Envelope,
  type Logger,
  type ReceivedMessage,
  type SettleResults,
  type SubscriptionSpec,
  settledWithin,
} from '@mqkit/core/driver';
import { decodeAttemptLog, encodeAttemptLog, type AttemptLog, type LoggedOffset } from './attempt-log.ts';
import type { CommittedOffset, ConsumerSeam, FetchedBatch, FetchedRecord, KafkaClientSeam } from './client/seam.ts';
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
  /**
   * How far (in offsets, per partition) first deliveries may be handed to core past the last
   * offset a landed commit recorded, so that the recording commits run behind the hand-over
   * instead of stalling it. After an unclean hand-over, every unacked record up to the recorded
   * end + this counts as a suspect. Default: max(2048, 8 × maxInFlight).
   */
  readonly lookAhead?: number;
}

/**
 * A fetched record held until core settles it (one object per record, reused across redeliveries).
 * It keeps the client's record and decodes it into an envelope only when it is handed to core:
 * up to `maxBufferedMessages` records wait between fetch and hand-over, and decoding them all up
 * front would keep thousands of envelopes (and core's queue entries) alive through young-generation
 * GCs, whose cost grows with what survives them.
 */
class Held implements TrackedOffset, LoggedOffset {
  readonly offset: string;
  /** `offset` as a number, for the attempt log's window arithmetic. */
  readonly at: number;
  readonly state: PartitionState;
  readonly lane: string | undefined;
  /** The fetched record until it is decoded. */
  record: FetchedRecord | undefined;
  envelope: Envelope | undefined = undefined;
  attempt: number;
  /** Whether the current attempt was handed to core (returned by `receive`). */
  handed = false;
  /** Waiting in `gated` for a commit to record it as taken (a redelivery, or past the look-ahead). */
  waiting = false;
  /** The attempt a successful commit recorded as taken; handed over only once it covers `attempt`. */
  recorded = 0;
  /** Set while a commit being written counts it as taken. */
  taken = false;
  /** Taken by an owner that was lost (crash, hang): handed over one at a time (see `#mayHand`). */
  suspect = false;
  dueAt: number;
  timer: NodeJS.Timeout | undefined = undefined;
  /** Acked, or dropped by a rebalance/close: no longer outstanding. */
  done = false;

  constructor(record: FetchedRecord, at: number, state: PartitionState, lane: string | undefined, attempt: number, dueAt: number) {
    this.offset = record.offset;
    this.at = at;
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
  /** The attempt log committed by the previous owner: undefined until read, null if none. */
  log: AttemptLog | null | undefined;
  /** Batches fetched before the log was read (the fetch loop waits on `logRead` meanwhile). */
  stash: FetchedRecord[][];
  readonly logRead: { promise: Promise<void>; resolve(): void };
  /** Where consumption started (committed offset, else the first fetched one). */
  start: string | undefined;
  /** Last offset of the contiguous settled prefix. */
  lastDone: string | undefined;
  /** Highest offset fetched. */
  lastFetched: number;
  /**
   * Highest offset that may log more than "never taken": handed over, recorded, or held with an
   * attempt above 1. Commits encode up to here only (the rest reads as never taken).
   */
  frontier: number;
  /** Due records waiting for a commit to record them as taken (or for their turn as suspects). */
  gated: Held[];
  /** Highest offset waiting in `gated` to be recorded (commits encode up to here too). */
  waitingTo: number;
  /**
   * This owner's own recorded end in the last commit that landed (its frontier, or the position − 1;
   * the previous owner's carried range aside): first deliveries may be handed over up to
   * `landed + lookAhead` without waiting. Undefined until this owner's first commit.
   */
  landed: number | undefined;
  /**
   * Last offset the previous owner's log says anything about: this owner's commits keep describing
   * up to there (its suspects, carried from that log until fetched).
   */
  carryTo: number;
  /** Highest attempt of any record held (a truncated log rounds up to it). */
  maxAttempt: number;
  /** The suspect to be recorded as taken next, and the one with core. */
  suspectNext: Held | undefined;
  suspectOut: Held | undefined;
}

/** The position a commit of `state` carries: everything before it is settled. */
function positionOf(state: PartitionState): string | undefined {
  return state.lastDone === undefined ? state.start : nextOffset(state.lastDone);
}

/**
 * One hand-over of a held record to core. A class rather than an object literal: one is made per
 * delivered message. `id` names the record (`partition:offset`) across its redeliveries.
 */
export class KafkaMessage implements ReceivedMessage {
  readonly envelope: Envelope;
  readonly deliveryCount: number;
  readonly id: string;
  readonly orderingKey: string | undefined;
  readonly meta: Readonly<Record<string, string>>;
  /** @internal */
  readonly held: Held;

  constructor(held: Held, envelope: Envelope) {
    this.held = held;
    this.envelope = envelope;
    this.deliveryCount = held.attempt;
    this.orderingKey = held.lane;
    this.id = `${held.state.partitionText}:${held.offset}`;
    this.meta = { partition: held.state.partitionText, offset: held.offset };
  }
}

/** A receive() waiting for records: filled by {@link KafkaSubscription.#drain} up to `max`. */
interface Waiter {
  readonly max: number;
  readonly out: KafkaMessage[];
  resolve(): void;
}

const COMMIT_RETRY_MS = 500;

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export class KafkaSubscription implements DriverReceiver<KafkaMessage> {
  readonly batchSize = 500;
  readonly scope: string;
  readonly #spec: SubscriptionSpec;
  readonly #settings: KafkaSubscriptionSettings;
  readonly #logger: Logger;
  readonly #consumer: ConsumerSeam;
  readonly #seam: KafkaClientSeam;
  readonly #partitions = new Map<number, PartitionState>();
  /** Ordered subscriptions: per key, the held records in offset order; the head is out. */
  readonly #lanes = new Map<string, Held[]>();
  /** Next attempt per `partition:offset`, kept across rebalances inside this member. */
  readonly #attempts = new Map<string, number>();
  /**
   * Per partition, what this process acked in an assignment it lost before the commit recording
   * it landed: a rebalance refetches from the committed offset, and those records are skipped as
   * done instead of reaching a handler again (the same-process half of kafkajs#1046's duplicates;
   * another owner learns it from the attempt log in the offset metadata).
   */
  readonly #ackedBeforeDrop = new Map<number, { readonly through: number; readonly above: Set<number>; limit: number }>();
  /** Partitions whose position or attempt log changed since their last commit. */
  readonly #dirty = new Set<PartitionState>();
  /** A commit recording taken records is awaited by the hand-over: start it without the interval. */
  #urgent = false;
  readonly #lookAhead: number;
  #commitTimer: NodeJS.Timeout | undefined;
  #commitLoop: Promise<void> | undefined;
  /** Reused by each commit's attempt-log encoding. */
  readonly #scratch: Held[] = [];
  /** Zero-delay redeliveries, handed over on the next macrotask (never synchronously). */
  #immediate: Held[] = [];
  #immediateHandle: NodeJS.Immediate | undefined;
  #outstanding = 0;
  /** Due records not yet handed to core (no receive waiting, or its `max` reached), in fetch order from `#readyHead`. */
  #ready: Array<Held | undefined> = [];
  #readyHead = 0;
  #draining = false;
  /** The receive() calls waiting for records, oldest first. */
  readonly #waiters: Waiter[] = [];
  /** The abort signal of the receive() calls (core's, one per subscription), listened to once. */
  #signal: AbortSignal | undefined;
  /** A consumer crash to report through the next receive(). */
  #failure: MqError | undefined;
  /** Set while the buffer is full: settles when fetching may go on. */
  #room: { promise: Promise<void>; resolve(): void } | undefined;
  #open = true;
  #joined: (() => void) | undefined;
  readonly #onClose: () => void;

  constructor(
    seam: KafkaClientSeam,
    spec: SubscriptionSpec,
    scope: string,
    settings: KafkaSubscriptionSettings,
    logger: Logger,
    onClose: () => void,
  ) {
    this.#seam = seam;
    this.#spec = spec;
    this.scope = scope;
    this.#settings = settings;
    this.#logger = logger;
    this.#onClose = onClose;
    this.#lookAhead = settings.lookAhead ?? Math.max(2048, 8 * spec.maxInFlight);
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
        // Reported through the next receive() (core logs it and backs off).
        this.#failure = err;
        this.#wakeWaiters();
      },
    });
    if (this.#settings.joinTimeoutMs > 0) await settledWithin(joined, this.#settings.joinTimeoutMs);
  }

  #onAssignment(partitions: readonly number[]): void {
    // kafkajs restarts every assigned partition from its committed offset: drop what we hold.
    // Records acked here whose commit had not landed come again: they are skipped as done (see
    // #ackedBeforeDrop); the others are handed over again.
    for (const state of this.#partitions.values()) this.#dropPartition(state);
    for (const partition of this.#ackedBeforeDrop.keys()) if (!partitions.includes(partition)) this.#ackedBeforeDrop.delete(partition);
    this.#partitions.clear();
    this.#ready = [];
    this.#readyHead = 0;
    this.#dirty.clear();
    this.#logger.debug({ topic: this.#spec.topic, group: this.#settings.groupId, partitions }, 'kafka partitions assigned');
    this.#readLogs(partitions.map((p) => this.#partition(p)));
    this.#joined?.();
    this.#joined = undefined;
    this.#checkBuffer();
  }

  /**
   * Reads the committed offsets and attempt logs of newly assigned partitions; their records wait
   * until then. Retried while the partitions stay assigned here.
   */
  #readLogs(states: readonly PartitionState[]): void {
    if (states.length === 0) return;
    void (async () => {
      for (let failures = 0; ; failures += 1) {
        if (!this.#open || states.every((s) => !s.live)) return;
        try {
          // A commit of the previous assignment still in flight lands before the read.
          await this.#commitLoop;
          const committed = await this.#consumer.committed();
          for (const state of states) if (state.live) this.#applyLog(state, committed.find((c) => c.partition === state.partition));
          return;
        } catch (err) {
          this.#logger.warn({ err: this.#seam.classify(err), topic: this.#spec.topic }, 'kafka: reading committed offsets failed; retrying');
          await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** failures)));
        }
      }
    })();
  }

  #applyLog(state: PartitionState, committed: CommittedOffset | undefined): void {
    if (state.log !== undefined) return;
    const position = committed && /^\d+$/.test(committed.offset) ? committed.offset : undefined;
    state.start = position;
    const log = position === undefined ? undefined : decodeAttemptLog(committed!.metadata, Number(position));
    state.log = log ?? null;
    if (log) {
      // Our commits keep describing the previous owner's suspects (carried until fetched).
      state.carryTo = log.limit;
      state.maxAttempt = Math.max(state.maxAttempt, log.maxValue + 1);
    }
    // This owner's first commit (marks the log as running) lands before any hand-over.
    this.#commitUrgently(state);
    const stash = state.stash;
    state.stash = [];
    for (const records of stash) this.#accept(state, records);
    state.logRead.resolve();
    this.#drain();
    this.#checkBuffer();
  }

  #dropPartition(state: PartitionState): void {
    const through = state.lastDone === undefined ? -1 : Number(state.lastDone);
    const above = new Set<number>();
    let limit = through;
    for (const entry of state.offsets.unsettled()) {
      if (!entry.done) continue;
      above.add(entry.at);
      if (entry.at > limit) limit = entry.at;
    }
    if (limit >= 0) this.#ackedBeforeDrop.set(state.partition, { through, above, limit });
    state.live = false;
    state.gated = [];
    state.stash = [];
    state.logRead.resolve();
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
      state = {
        partition,
        partitionText: String(partition),
        offsets: new OffsetTracker<Held>(),
        live: true,
        log: undefined,
        stash: [],
        logRead: deferred(),
        start: undefined,
        lastDone: undefined,
        lastFetched: -1,
        frontier: -1,
        gated: [],
        waitingTo: -1,
        carryTo: -1,
        landed: undefined,
        maxAttempt: 1,
        suspectNext: undefined,
        suspectOut: undefined,
      };
      this.#partitions.set(partition, state);
    }
    return state;
  }

  /** Takes a fetched batch; returns a promise (fetch no more until it settles) when the buffer is full. */
  #onBatch(batch: FetchedBatch): Promise<void> | undefined {
    if (!this.#open) return undefined;
    let state = this.#partitions.get(batch.partition);
    if (!state) {
      // Not announced by an assignment (should not happen): read its log like an assigned one.
      state = this.#partition(batch.partition);
      this.#readLogs([state]);
    }
    if (state.log === undefined) {
      state.stash.push([...batch.records]);
      return state.logRead.promise;
    }
    this.#accept(state, batch.records);
    this.#drain();
    this.#checkBuffer();
    return this.#room?.promise;
  }

  /** Holds fetched records, with their attempts from memory and the previous owner's log. */
  #accept(state: PartitionState, records: readonly FetchedRecord[]): void {
    const { partition, log } = state;
    const ordered = this.#spec.ordered;
    const attempts = this.#attempts;
    const now = Date.now();
    const ackedBefore = this.#ackedBeforeDrop.get(partition);
    let skipped = false;
    for (let i = 0; i < records.length; i += 1) {
      const record = records[i]!;
      const at = Number(record.offset);
      let attempt = attempts.size === 0 ? 1 : (attempts.get(`${partition}:${record.offset}`) ?? 1);
      let done = ackedBefore !== undefined && (at <= ackedBefore.through || ackedBefore.above.has(at));
      if (ackedBefore !== undefined && at >= ackedBefore.limit) this.#ackedBeforeDrop.delete(partition);
      let suspect = false;
      const recovered = log ? log.recover(at) : undefined;
      if (recovered === 'done') done = true;
      else if (recovered !== undefined) {
        attempt = Math.max(attempt, recovered.attempt);
        suspect = recovered.suspect;
      }
      // Only what placement needs is read now (delay, and the key for ordered lanes).
      const lane = !done && ordered && record.key && record.key.length > 0 ? record.key.toString() : undefined;
      const held = new Held(record, at, state, lane, attempt, done ? 0 : deliverAtOf(record, now));
      if (!state.offsets.add(held)) continue;
      state.start ??= record.offset;
      if (at > state.lastFetched) state.lastFetched = at;
      if (done) {
        // Acked by the previous owner, only held back by an earlier unfinished offset.
        held.done = true;
        held.record = undefined;
        skipped = true;
        continue;
      }
      if (attempt > state.maxAttempt) state.maxAttempt = attempt;
      // (Suspects are covered by `carryTo`: they must not widen this owner's own range.)
      if (attempt > 1 && !suspect && at > state.frontier) state.frontier = at;
      held.suspect = suspect;
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
    if (skipped) this.#complete(state);
  }

  /** Queues `held` for core now, or when it is due. */
  #schedule(held: Held): void {
    const wait = held.dueAt === 0 ? 0 : held.dueAt - Date.now();
    if (wait <= 0) {
      this.#enqueue(held);
      return;
    }
    held.timer = setTimeout(() => {
      held.timer = undefined;
      this.#enqueue(held);
      this.#drain();
    }, wait);
  }

  /** Into the ready queue: due, waiting for core (and maybe for a commit recording it). */
  #enqueue(held: Held): void {
    this.#ready.push(held);
  }

  /**
   * Whether `held` (not a suspect) may be handed over without waiting for a commit: it was recorded
   * as taken, or it is a first delivery within the look-ahead past the last recorded window.
   */
  #recorded(held: Held): boolean {
    if (held.recorded >= held.attempt) return true;
    const landed = held.state.landed;
    return held.attempt === 1 && landed !== undefined && held.at <= landed + this.#lookAhead;
  }

  /**
   * Hands due records to the waiting receive() calls, up to their `max`: core's in-flight budget is
   * the only bound on what it holds, and a record is decoded just before it goes (see {@link Held}).
   */
  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    try {
      const ready = this.#ready;
      const waiters = this.#waiters;
      while (this.#readyHead < ready.length && waiters.length > 0 && this.#open) {
        const held = ready[this.#readyHead]!;
        ready[this.#readyHead] = undefined;
        this.#readyHead += 1;
        if (held.done) continue;
        const state = held.state;
        if (held.suspect) {
          if (!this.#mayHand(held)) continue;
        } else if (!this.#recorded(held)) {
          // A redelivery, or too far ahead of the recorded window: wait for a commit recording it.
          held.waiting = true;
          if (held.at > state.waitingTo) state.waitingTo = held.at;
          state.gated.push(held);
          this.#requestRecord(state);
          continue;
        }
        const waiter = waiters[0]!;
        if (this.#hand(held, waiter.out) && waiter.out.length >= waiter.max) {
          waiters.shift();
          waiter.resolve();
        }
      }
      // What the waiting calls got so far goes out now; a call with nothing keeps waiting.
      while (waiters.length > 0 && waiters[0]!.out.length > 0) waiters.shift()!.resolve();
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

  /** Decodes `held` into `out`; false when it is undecodable (then skipped like an ack). */
  #hand(held: Held, out: KafkaMessage[]): boolean {
    let envelope = held.envelope;
    if (envelope === undefined) {
      try {
        envelope = fromRecord(this.#spec.topic, held.state.partition, held.record!);
      } catch (err) {
        const error = new MqError('INTERNAL', `kafka: undecodable record at ${held.state.partition}:${held.offset}; skipped`, { cause: err });
        this.#logger.error({ err: error, topic: this.#spec.topic, group: this.#spec.group }, 'kafka: undecodable record skipped');
        this.finish(held); // nothing core could do with it
        return false;
      }
      held.envelope = envelope;
      held.record = undefined;
    }
    held.handed = true;
    held.waiting = false;
    const state = held.state;
    if (held.at > state.frontier) {
      state.frontier = held.at;
      // Keep the recorded window moving: commit now once half of the look-ahead is used, else
      // with the next (ack) commit.
      if (state.landed === undefined || held.at - state.landed > this.#lookAhead / 2) this.#requestRecord(state);
      else if (!this.#dirty.has(state)) {
        this.#dirty.add(state);
        this.#scheduleCommit();
      }
    }
    out.push(new KafkaMessage(held, envelope));
    return true;
  }

  /** Asks for a commit recording `state`'s waiting records as taken, without the interval. */
  #requestRecord(state: PartitionState): void {
    if (!state.live || (this.#urgent && this.#dirty.has(state))) return;
    this.#commitUrgently(state);
  }

  /** Commits `state` now, not after the interval; or right after the commit in flight. */
  #commitUrgently(state: PartitionState): void {
    this.#dirty.add(state);
    this.#urgent = true;
    if (this.#commitLoop) return; // the loop starts the next one as soon as it is done
    clearTimeout(this.#commitTimer);
    this.#commitTimer = undefined;
    this.#startCommit();
  }

  /**
   * Suspects: records the previous owner had taken when it was lost. One of them may have killed
   * it, so they go to core one at a time per partition, each recorded alone as taken (no
   * look-ahead) after the previous one settled: a further crash then counts against the record
   * that caused it, not against its neighbours. Returns whether `held` may be handed now; if not,
   * it waits in `gated`.
   */
  #mayHand(held: Held): boolean {
    const state = held.state;
    if (state.suspectNext === held && held.recorded >= held.attempt && state.suspectOut === undefined) {
      state.suspectOut = held;
      return true;
    }
    state.gated.push(held);
    if (state.suspectOut === undefined && state.suspectNext === undefined) {
      state.suspectNext = held;
      this.#commitUrgently(state);
    }
    return false;
  }

  /** A suspect settled (acked, nacked or dropped): the next one may be recorded and handed. */
  #suspectSettled(held: Held): void {
    held.suspect = false;
    const state = held.state;
    if (state.suspectOut !== held && state.suspectNext !== held) return;
    state.suspectOut = undefined;
    state.suspectNext = undefined;
    this.#ungate(state);
  }

  /** After a commit recorded more of `state` as taken (or a suspect settled): hand over what waited. */
  #ungate(state: PartitionState): void {
    const gated = state.gated;
    if (gated.length === 0) return;
    const kept: Held[] = [];
    for (const held of gated) {
      if (held.done) continue;
      if (held.suspect || this.#recorded(held)) this.#ready.push(held);
      else kept.push(held);
    }
    state.gated = kept;
    // Some were marked after this commit was written: record them too.
    if (kept.length > 0) this.#requestRecord(state);
    this.#drain();
  }

  /**
   * Up to `max` due records; waits while there is none (resolves `[]` when `signal` aborts).
   * Rejects once with a consumer crash kafkajs reported (it restarts the consumer itself).
   */
  receive(max: number, signal: AbortSignal): Promise<readonly KafkaMessage[]> {
    if (!this.#open) return Promise.reject(new MqError('CLOSED', 'kafka subscription is closed'));
    const failure = this.#failure;
    if (failure) {
      this.#failure = undefined;
      return Promise.reject(failure);
    }
    if (signal.aborted) return Promise.resolve([]);
    if (signal !== this.#signal) {
      // Core passes one signal for the subscription's life: one listener, not one per call.
      this.#signal = signal;
      signal.addEventListener('abort', () => this.#wakeWaiters(), { once: true });
    }
    return new Promise((resolve) => {
      const out: KafkaMessage[] = [];
      this.#waiters.push({ max: Math.max(1, max), out, resolve: () => resolve(out) });
      this.#drain();
    });
  }

  /** Ends the waiting receive() calls with what they have (a crash to report, close). */
  #wakeWaiters(): void {
    const waiters = this.#waiters.splice(0);
    for (const waiter of waiters) waiter.resolve();
  }

  /**
   * Done: each record joins its partition's settled prefix. A record dropped by a rebalance has
   * nothing to commit, but its copy, refetched from the committed offset, is skipped as done.
   */
  async ack(messages: readonly KafkaMessage[]): Promise<SettleResults> {
    this.#checkOpen();
    for (const { held } of messages) {
      if (!held.done) this.finish(held);
      else if (!held.state.live) this.#ackedAfterDrop(held);
    }
  }

  #ackedAfterDrop(held: Held): void {
    const { partition } = held.state;
    let acked = this.#ackedBeforeDrop.get(partition);
    if (!acked) this.#ackedBeforeDrop.set(partition, (acked = { through: -1, above: new Set(), limit: -1 }));
    acked.above.add(held.at);
    if (held.at > acked.limit) acked.limit = held.at;
  }

  /** A handler's nack: the record stays uncommitted and comes again after `delayMs` with attempt + 1. */
  async nack(messages: readonly KafkaMessage[], delayMs: number): Promise<SettleResults> {
    this.#checkOpen();
    for (const { held } of messages) if (!held.done && held.handed) this.redeliver(held, Math.max(0, delayMs));
  }

  /**
   * Records no handler saw (core got them and gives them back, e.g. on close): not an attempt.
   * They go back to the ready queue at the same attempt, unhanded (a graceful close's log then
   * counts only the deliveries they went through), and come out of a later receive.
   */
  async release(messages: readonly KafkaMessage[], delayMs: number): Promise<SettleResults> {
    this.#checkOpen();
    for (const { held } of messages) {
      if (held.done || !held.handed) continue;
      held.handed = false;
      held.dueAt = delayMs > 0 ? Date.now() + delayMs : 0;
      this.#schedule(held);
    }
    this.#drain();
  }

  #checkOpen(): void {
    if (!this.#open) throw new MqError('CLOSED', 'kafka subscription is closed; the message will be redelivered');
  }

  /** A nack: hold the record uncommitted and hand it over again after `delayMs`. */
  redeliver(held: Held, delayMs: number): void {
    const state = held.state;
    if (held.suspect) this.#suspectSettled(held);
    held.attempt += 1;
    held.handed = false;
    if (held.attempt > state.maxAttempt) state.maxAttempt = held.attempt;
    this.#attempts.set(`${state.partition}:${held.offset}`, held.attempt);
    this.#dirty.add(state); // the attempt log records the new count with the next commit
    this.#scheduleCommit();
    if (delayMs > 0) {
      held.dueAt = Date.now() + delayMs;
      this.#schedule(held);
      return;
    }
    // Never straight back into core: a handler that always nacks would run in one endless chain
    // of microtasks and starve timers, I/O (heartbeats) and close(). One macrotask per wave.
    held.dueAt = 0;
    this.#immediate.push(held);
    this.#immediateHandle ??= setImmediate(() => {
      this.#immediateHandle = undefined;
      const wave = this.#immediate;
      this.#immediate = [];
      for (const h of wave) if (!h.done) this.#enqueue(h);
      this.#drain();
    });
  }

  /** An ack: the record joins its partition's settled prefix. */
  finish(held: Held): void {
    held.done = true;
    if (held.suspect) this.#suspectSettled(held);
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
    if (!state.live) return;
    const last = state.offsets.advance();
    if (last !== undefined) state.lastDone = last;
    // Even without an advance the log changed: this record need not come again after a crash.
    this.#dirty.add(state);
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
      if (this.#dirty.size === 0) return;
      if (this.#urgent && this.#open) this.#startCommit();
      else this.#scheduleCommit();
    });
  }

  /**
   * Decides which of `state`'s records the commit being written counts as taken: those handed to
   * core, those already recorded, the suspect to be handed next, and those waiting for a record
   * (redeliveries, first deliveries past the look-ahead). Others count only the deliveries they
   * went through (a first delivery handed over after this commit is covered by the look-ahead).
   * Collects into `entries` the records the log must describe (up to the frontier or the last
   * waiting record) and returns the ones newly counted. `exact` (close): only collects.
   */
  #markTaken(state: PartitionState, entries: Held[], exact: boolean): Held[] {
    const marked: Held[] = [];
    const until = Math.max(state.frontier, state.waitingTo, state.suspectNext?.at ?? -1);
    state.offsets.scan((held) => {
      if (held.at > until) return false;
      entries.push(held);
      if (held.done || exact) return true;
      let taken: boolean;
      if (held.handed || held.recorded >= held.attempt) taken = true;
      else if (held.suspect) taken = state.suspectNext === held;
      else taken = held.waiting;
      if (taken && !held.handed && held.recorded < held.attempt) {
        marked.push(held);
        if (held.at > state.frontier) state.frontier = held.at;
      }
      held.taken = taken;
      return true;
    });
    return marked;
  }

  /**
   * Commits the changed partitions: position and attempt log. `exact` (on close): the log counts
   * only deliveries actually handed over. On failure keeps them dirty and waits a little.
   */
  async #commitOnce(exact = false): Promise<void> {
    this.#urgent = false;
    if (this.#dirty.size === 0) return;
    const parts: Array<{ state: PartitionState; marked: Held[]; base: number; partition: number; offset: string; metadata: string }> = [];
    const lookAhead = this.#lookAhead;
    for (const state of this.#dirty) {
      // Not before the previous owner's log was read: it would be overwritten unread.
      if (!state.live || state.log === undefined) continue;
      const offset = positionOf(state);
      if (offset === undefined) continue;
      const entries = this.#scratch;
      entries.length = 0;
      const marked = this.#markTaken(state, entries, exact);
      const position = Number(offset);
      // This owner hands first deliveries over up to `base + lookAhead` until the next commit; the
      // window also covers the previous owner's range (carried), which the lag need not repeat.
      const base = Math.max(state.frontier, position - 1);
      const end = Math.max(base, state.carryTo);
      const mode = exact ? 'exact' : { lag: Math.max(0, base + lookAhead - end) };
      const metadata = encodeAttemptLog(position, end, entries, state.maxAttempt, mode, state.log ?? undefined);
      entries.length = 0;
      parts.push({ state, marked, base, partition: state.partition, offset, metadata });
    }
    this.#dirty.clear();
    if (parts.length === 0) return;
    try {
      await this.#consumer.commit({
        topic: this.#spec.topic,
        partitions: parts.map(({ partition, offset, metadata }) => ({ partition, offset, metadata })),
      });
      for (const { state, marked, base } of parts) {
        if (!state.live) continue;
        if (state.landed === undefined || base > state.landed) state.landed = base;
        for (let i = 0; i < marked.length; i += 1) {
          const held = marked[i]!;
          // Recorded with the attempt it was marked at (a nack since then needs a new record).
          if (held.done || held.handed || held.recorded >= held.attempt) continue;
          held.recorded = held.attempt;
        }
        this.#ungate(state);
      }
    } catch (err) {
      // Rebalancing or reconnecting: try again shortly. If the partition moved away, the next
      // assignment drops it; redelivery covers the rest.
      for (const { state } of parts) if (state.live) this.#dirty.add(state);
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
   * pause, which stalls for `maxWaitTimeInMs` per fetch round). Core's budget only limits the
   * hand-over (records wait in `#ready`, counted here), never the fetching.
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

  async close(): Promise<void> {
    if (!this.#open) return;
    // Core settled or gave back what it held (a handler's abandoned delivery through nack: it
    // counts). From here settles reject with CLOSED. Flush the acks, then leave the group: the
    // rest stays uncommitted and is redelivered to the remaining members.
    this.#open = false;
    this.#wakeWaiters();
    this.#consumer.pause();
    clearTimeout(this.#commitTimer);
    this.#commitTimer = undefined;
    clearImmediate(this.#immediateHandle);
    this.#immediateHandle = undefined;
    this.#immediate = [];
    this.#checkBuffer(); // a fetch loop waiting for room returns now
    if (this.#commitLoop) await this.#commitLoop;
    // The last word on each partition: what was acked, and exactly which records were handed over
    // and not settled (abandoned handlers count an attempt; records never handed over do not).
    for (const state of this.#partitions.values()) if (state.lastFetched >= 0) this.#dirty.add(state);
    await this.#commitOnce(true);
    for (const state of this.#partitions.values()) this.#dropPartition(state);
    this.#partitions.clear();
    this.#ready = [];
    this.#readyHead = 0;
    this.#lanes.clear();
    await this.#consumer.disconnect();
    this.#onClose();
  }
}
