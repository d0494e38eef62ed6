import { randomUUID } from 'node:crypto';
import type { Span } from '@opentelemetry/api';
import { backoffDelay, DEFAULT_BACKOFF, sleep, type BackoffPolicy } from './backoff.ts';
import { encodePayload, jsonCodec, type Codec } from './codec.ts';
import type { Capabilities, Driver, SendOutcome } from './driver/driver.ts';
import { z } from 'zod';
import { describeIssues } from './config.ts';
import { MqError, toMqError } from './errors.ts';
import { envelopeSize, envelopeSizeBound, HEADERS, RESERVED_HEADER_PREFIX, type Envelope } from './message.ts';
import { KeyGate } from './key-gate.ts';
import { Telemetry, untraced } from './telemetry.ts';

/** Per-message publish options. */
export interface PublishOptions<T = unknown> {
  /** Stable id (the dedup key). Generated (UUID v4) when absent; reuse it when you retry yourself. */
  id?: string;
  /** Ordering / partition key. */
  key?: string;
  /** Application headers (string values; names must not start with `x-mqkit-`). */
  headers?: Readonly<Record<string, string>>;
  /** Deliver no earlier than this many ms from now (see the adapter's delay capability). */
  delayMs?: number;
  /** Payload codec. @default jsonCodec */
  codec?: Codec<T>;
}

/** One message of {@link Client.publishBatch}. */
export interface OutgoingMessage<T = unknown> extends PublishOptions<T> {
  topic: string;
  payload: T;
}

/** What a resolved publish tells. */
export interface PublishReceipt {
  readonly id: string;
  readonly topic: string;
  /** Broker-side id or position (Kafka `partition:offset`, RocketMQ message id, SQS MessageId, …). */
  readonly receipt?: string | undefined;
}

/** Per-message outcome of a batch publish, in input order. */
export type PublishOutcome =
  | ({ readonly ok: true } & PublishReceipt)
  | { readonly ok: false; readonly id: string; readonly topic: string; readonly error: MqError };

/** Reliable-send settings. */
export interface PublishPolicy {
  /**
   * Deadline of each publish: it keeps retrying retryable failures (connection loss, broker
   * restart, unconfirmed) until then, and rejects at the latest then, even while the broker has
   * not answered: TIMEOUT, or the failure it was waiting to retry. @default 30000
   */
  readonly timeoutMs: number;
  /** Backoff between those retries. */
  readonly backoff: BackoffPolicy;
  /**
   * Most messages pending at once (accepted and not yet done with by the driver); beyond it
   * publish() waits for room, up to its deadline. @default 10000
   */
  readonly maxPending: number;
  /** Most encoded payload bytes pending at once, likewise. @default 64 MiB */
  readonly maxPendingBytes: number;
}

export const DEFAULT_PUBLISH_POLICY: PublishPolicy = {
  timeoutMs: 30_000,
  backoff: { ...DEFAULT_BACKOFF, initialDelayMs: 100, maxDelayMs: 2_000 },
  maxPending: 10_000,
  maxPendingBytes: 64 * 1024 * 1024,
};

const ANYTHING = /^/;

/**
 * A fresh UUID as a flat string. Node builds `randomUUID()` by concatenation: a tree of ~14
 * string pieces (~490 heap bytes) until something flattens it, and a pending publish keeps its id
 * for its whole life. Running a regular expression over it flattens it in place (V8), ~60 bytes.
 */
function newMessageId(): string {
  const id = randomUUID();
  ANYTHING.test(id);
  return id;
}

/** The last topic name each adapter's pattern accepted: most publishes repeat it. */
const lastValidTopic = new WeakMap<Capabilities, string>();

function isValidTopic(caps: Capabilities, topic: string): boolean {
  if (!caps.topicPattern.test(topic)) return false;
  lastValidTopic.set(caps, topic);
  return true;
}

const isCodec = (value: unknown): value is Codec =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as Codec).contentType === 'string' &&
  typeof (value as Codec).encode === 'function' &&
  typeof (value as Codec).decode === 'function';

/** The fields of {@link PublishOptions}, one schema each (the keys must match the interface's). */
const publishOptionFields = {
  id: z.string().min(1).max(256).optional(),
  key: z.string().min(1).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  delayMs: z.number().min(0).optional(),
  codec: z.custom<Codec>(isCodec, { message: 'must be a Codec ({ contentType, encode, decode })' }).optional(),
} satisfies { [K in keyof PublishOptions]-?: z.ZodType };

/** Per-message publish options: strict, unknown keys (`delay` for `delayMs`) rejected. */
export const publishOptionsSchema = z.object(publishOptionFields).strict();

/** One message of publishBatch: the options plus its topic and payload. */
export const outgoingMessageSchema = z.object({ ...publishOptionFields, topic: z.string(), payload: z.unknown() }).strict();

/**
 * Whether every key of the options is one {@link publishOptionsSchema} knows. A hand check per
 * publish (a zod parse costs more than the rest of a publish's checks); zod runs only to word the
 * error, in {@link invalidOptions}.
 */
function knownKeys(options: object, batch: boolean): boolean {
  for (const name in options) {
    switch (name) {
      case 'id':
      case 'key':
      case 'headers':
      case 'delayMs':
      case 'codec':
        continue;
      case 'topic':
      case 'payload':
        if (batch) continue;
        return false;
      default:
        return false;
    }
  }
  return true;
}

/** INVALID_MESSAGE naming each offending field of a message's options, worded by its schema. */
function invalidOptions(options: unknown, batch: boolean, topic: unknown, fallback: string): MqError {
  const where = batch ? 'publishBatch' : 'publish';
  const result = (batch ? outgoingMessageSchema : publishOptionsSchema).safeParse(options);
  const problems = result.success ? `${where}: ${fallback}` : describeIssues(result.error, where);
  return new MqError('INVALID_MESSAGE', problems, { details: typeof topic === 'string' ? { topic } : {} });
}

/**
 * Turns a user's message into an {@link Envelope}, checking it against the adapter's limits.
 * Throws INVALID_MESSAGE, TOO_LARGE or UNSUPPORTED; nothing is sent.
 */
export function buildEnvelope<T>(driver: Driver, message: OutgoingMessage<T>, internalHeaders = false): Envelope {
  if (typeof message !== 'object' || message === null) throw invalidOptions(message, true, undefined, 'a message must be an object');
  return envelopeOf(driver, message.topic, message.payload, message, internalHeaders, true);
}

/**
 * {@link buildEnvelope} with the topic and payload apart from the options (no object spread per
 * publish). `batch`: the options are a publishBatch message (with `topic` and `payload`).
 */
export function envelopeOf<T>(driver: Driver, topic: string, payload: T, message: PublishOptions<T>, internalHeaders = false, batch = false): Envelope {
  const caps = driver.capabilities;
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new MqError('INVALID_MESSAGE', 'topic must be a non-empty string');
  }
  if (topic !== lastValidTopic.get(caps) && !isValidTopic(caps, topic)) {
    throw new MqError('INVALID_MESSAGE', `topic "${topic}" is not a valid ${driver.name} topic name (${caps.topicPattern})`, {
      details: { topic },
    });
  }
  if (typeof message !== 'object' || message === null || !knownKeys(message, batch)) {
    throw invalidOptions(message, batch, topic, 'options must be an object');
  }
  const given = message.id;
  if (given !== undefined && (typeof given !== 'string' || given.length === 0 || given.length > 256)) {
    throw invalidOptions(message, batch, topic, 'id must be a non-empty string of at most 256 characters');
  }
  const id = given ?? newMessageId();
  if (message.key !== undefined && (typeof message.key !== 'string' || message.key.length === 0)) {
    throw invalidOptions(message, batch, topic, 'key must be a non-empty string when given');
  }
  const delayMs = message.delayMs === undefined ? 0 : message.delayMs; // null is no number either
  if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0) {
    throw invalidOptions(message, batch, topic, 'delayMs must be a finite number >= 0');
  }
  if (message.codec !== undefined && !isCodec(message.codec)) {
    throw invalidOptions(message, batch, topic, 'codec must be a Codec');
  }
  if (delayMs > 0 && (caps.delay.kind === 'none' || delayMs > caps.delay.maxMs)) {
    throw new MqError('UNSUPPORTED', `${driver.name} cannot delay a message by ${delayMs} ms (max ${caps.delay.maxMs} ms)`, {
      details: { topic, id },
    });
  }
  const headers: Record<string, string> = {};
  const named = message.headers;
  if (named !== undefined && (typeof named !== 'object' || named === null)) {
    throw invalidOptions(message, batch, topic, 'headers must be an object of strings');
  }
  if (named !== undefined) for (const name of Object.keys(named)) {
    const value = named[name];
    if (typeof value !== 'string') {
      throw new MqError('INVALID_MESSAGE', `header "${name}" must be a string`, { details: { topic, id } });
    }
    if (!internalHeaders && name.toLowerCase().startsWith(RESERVED_HEADER_PREFIX)) {
      throw new MqError('INVALID_MESSAGE', `header "${name}" uses the reserved prefix ${RESERVED_HEADER_PREFIX}`, {
        details: { topic, id },
      });
    }
    headers[name] = value;
  }
  const codec = (message.codec ?? jsonCodec) as Codec<T>;
  const body = encodePayload(codec, payload, { topic, id });
  headers[HEADERS.contentType] = codec.contentType;
  const envelope: Envelope = {
    id,
    topic,
    key: message.key,
    headers,
    body,
    timestamp: Date.now(),
    delayMs: delayMs > 0 ? delayMs : undefined,
  };
  checkLimits(driver, envelope);
  return envelope;
}

function checkLimits(driver: Driver, envelope: Envelope): void {
  const caps = driver.capabilities;
  // The exact size (UTF-8 encoding every string) only when the cheap bound is over the limit.
  const size = envelopeSizeBound(envelope) <= caps.maxMessageBytes ? 0 : envelopeSize(envelope);
  if (size > caps.maxMessageBytes) {
    throw new MqError('TOO_LARGE', `message of ${size} bytes exceeds ${driver.name}'s limit of ${caps.maxMessageBytes} bytes`, {
      details: { topic: envelope.topic, id: envelope.id, size, limit: caps.maxMessageBytes },
    });
  }
  // traceparent/tracestate are added after this check; keep room for them.
  if (Object.keys(envelope.headers).length + 2 > caps.maxHeaders) {
    throw new MqError('INVALID_MESSAGE', `${driver.name} carries at most ${caps.maxHeaders} headers including mqkit's own`, {
      details: { topic: envelope.topic, id: envelope.id },
    });
  }
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Where a {@link Pending} is. */
const WAITING = 0; // waiting for room (beyond maxPending / maxPendingBytes)
const QUEUED = 1; // in the queue of the next flush
const HELD = 2; // held back behind its busy key
const SENDING = 3; // inside a driver call
const BACKOFF = 4; // waiting to be retried
const BOOKED = 5; // outcome known, caller answered on the next turn of the event loop
const DONE = 6; // caller answered
const ORPHANED = 7; // caller answered (deadline passed) while its driver call is still open
type State = typeof WAITING | typeof QUEUED | typeof HELD | typeof SENDING | typeof BACKOFF | typeof BOOKED | typeof DONE | typeof ORPHANED;

const stateOf = (pending: Pending): State => (pending.flags & 7) as State;
const setState = (pending: Pending, state: State): void => {
  pending.flags = (pending.flags & ~7) | state;
};

interface Pending {
  /** Publish order, for per-key ordering; given when the message gets room (0 while waiting). */
  seq: number;
  readonly lane: string | undefined;
  envelope: Envelope;
  /** {@link State} in the low 3 bits, the number of retries so far above them (one field less). */
  flags: number;
  /** The deadline bucket holding this message until it is answered, and its index there. */
  bucket: DeadlineBucket | undefined;
  slot: number;
  span: Span | undefined;
  /** When it was accepted (`performance.now()`, 0 without a metrics SDK): the send duration. */
  readonly started: number;
  /** With `reject`: resolves with a {@link PublishReceipt}; without: with a {@link PublishOutcome}. */
  resolve(value: PublishOutcome | PublishReceipt): void;
  /** Set for single publishes, whose failure rejects. */
  reject: ((error: MqError) => void) | undefined;
  /** The failure it waits to retry: what its caller gets if the deadline comes first. */
  failure: MqError | undefined;
}

/**
 * The unanswered messages whose deadlines fall in one slice of time (deadlines are rounded up to
 * the slice). One timer serves the earliest bucket; a message leaves its bucket when answered.
 */
interface DeadlineBucket {
  readonly deadline: number;
  readonly items: Pending[];
}

/**
 * Reliable send: coalesces concurrent publishes into driver batches (one `send` per tick per
 * batch, never one-at-a-time), retries retryable failures with backoff until each message's
 * deadline, and resolves each message with its own outcome. Messages of one key go out in
 * publish order: a message waiting to be retried holds back the later ones of its key, and never
 * two driver calls with the same key at once, unless the driver's calls are ordered
 * (`capabilities.orderedSends`), in which case batches of one key are pipelined.
 *
 * The deadline is hard: at `timeoutMs` the caller gets TIMEOUT (retryable) wherever its message
 * is, even inside a driver call the broker never answers. Such a call's later outcome is ignored
 * for that caller, but the message keeps its key busy (and its room, see below) until the call
 * settles, since the broker may still write it: a later message of the key is never handed over
 * ahead of it. Messages that were not on their way (queued, held, waiting to be retried or for
 * room) are simply never sent.
 *
 * Pending messages are bounded by count and payload bytes (`maxPending`, `maxPendingBytes`),
 * counted from acceptance until the driver is done with them. Beyond that, publishes wait for
 * room in publish order, up to their deadline (then TIMEOUT).
 */
export class ReliableSender {
  readonly #driver: Driver;
  readonly #telemetry: Telemetry;
  readonly #policy: PublishPolicy;
  #queue: Pending[] = [];
  #queueSorted = true;
  #seq = 0;
  readonly #gate = new KeyGate();
  /**
   * Keyed messages held back while their key is busy, per lane, in seq order. A flush looks only
   * at what was queued or released since the last one, never again at every held message.
   */
  readonly #held = new Map<string, Pending[]>();
  #scheduled = false;
  #flushSoon = false;
  #closed = false;
  /** Messages and payload bytes with room (from getting it until the driver is done with them). */
  #count = 0;
  #bytes = 0;
  /** Messages waiting for room, in publish order; `#waitingHead` is the first not yet taken. */
  #waiting: Pending[] = [];
  #waitingHead = 0;
  /** Accepted messages whose caller has not been answered yet. */
  #open = 0;
  readonly #drainers: Array<() => void> = [];
  /** Deadline buckets in deadline order from `#bucketHead`; the last one takes new messages. */
  #buckets: DeadlineBucket[] = [];
  #bucketHead = 0;
  readonly #slice: number;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(driver: Driver, telemetry: Telemetry, policy: PublishPolicy) {
    this.#driver = driver;
    this.#telemetry = telemetry;
    this.#policy = policy;
    // Deadlines are kept to ~1 % of the timeout (5–250 ms): a few buckets, rarely a timer.
    this.#slice = Math.min(250, Math.max(5, Math.ceil(policy.timeoutMs / 100)));
  }

  /**
   * Sends envelopes built by {@link buildEnvelope}; resolves with one outcome per envelope.
   * `owned`: the caller hands the envelopes over (fresh from `buildEnvelope`), so their headers
   * are written in place instead of copied.
   */
  send(envelopes: readonly Envelope[], traced = true, owned = false): Promise<PublishOutcome[]> {
    if (this.#closed) {
      const error = new MqError('CLOSED', 'client is closed');
      return Promise.resolve(envelopes.map((e) => ({ ok: false, id: e.id, topic: e.topic, error })));
    }
    const bucket = this.#bucketFor(Date.now() + this.#policy.timeoutMs);
    return Promise.all(
      envelopes.map((envelope) => new Promise<PublishOutcome>((resolve) => this.#accept(envelope, traced, owned, bucket, resolve as Pending['resolve'], undefined))),
    );
  }

  /**
   * One envelope that the caller hands over (`buildEnvelope`'s fresh result): resolves with its
   * receipt, rejects with its error. One promise per publish, no outcome object in between.
   */
  sendOwned(envelope: Envelope): Promise<PublishReceipt> {
    if (this.#closed) return Promise.reject(new MqError('CLOSED', 'client is closed'));
    const bucket = this.#bucketFor(Date.now() + this.#policy.timeoutMs);
    return new Promise<PublishReceipt>((resolve, reject) => this.#accept(envelope, true, true, bucket, resolve, reject));
  }

  #accept(
    original: Envelope,
    traced: boolean,
    owned: boolean,
    bucket: DeadlineBucket,
    resolve: Pending['resolve'],
    reject: Pending['reject'],
  ): void {
    let envelope = original;
    let span: Span | undefined;
    if (traced) {
      // The trace context goes into the headers; never into a caller's object.
      const headers = owned ? (original.headers as Record<string, string>) : { ...original.headers };
      const started = this.#telemetry.startSend(original.topic, original.id, headers);
      // A span no SDK records needs no end: do not keep one alive per pending message.
      if (started.isRecording()) span = started;
      if (!owned) envelope = { ...original, headers };
    }
    const lane = KeyGate.laneOf(envelope.topic, envelope.key);
    const { items } = bucket;
    const pending: Pending = { seq: 0, lane, envelope, flags: WAITING, bucket, slot: items.length, span, started: this.#telemetry.now(), resolve, reject, failure: undefined };
    items.push(pending);
    this.#open += 1;
    // Behind messages already waiting for room, a publish waits too: room goes in publish order.
    if (this.#waitingHead === this.#waiting.length && this.#hasRoom(envelope)) this.#admit(pending);
    else this.#waiting.push(pending);
  }

  #hasRoom(envelope: Envelope): boolean {
    // A message larger than maxPendingBytes on its own still goes, alone.
    return this.#count === 0 || (this.#count < this.#policy.maxPending && this.#bytes + envelope.body.byteLength <= this.#policy.maxPendingBytes);
  }

  #admit(pending: Pending): void {
    this.#count += 1;
    this.#bytes += pending.envelope.body.byteLength;
    pending.seq = ++this.#seq;
    this.#enqueue(pending);
  }

  /** The driver is done with the message: its room goes to the messages waiting for it. */
  #free(pending: Pending): void {
    this.#count -= 1;
    this.#bytes -= pending.envelope.body.byteLength;
    this.#admitWaiting();
  }

  /** Gives room to waiting messages, in publish order, while there is room. */
  #admitWaiting(): void {
    const waiting = this.#waiting;
    if (waiting.length === 0) return; // the usual case: nobody waits
    while (this.#waitingHead < waiting.length) {
      const next = waiting[this.#waitingHead]!;
      if (stateOf(next) === WAITING) {
        if (!this.#hasRoom(next.envelope)) break;
        this.#admit(next);
      }
      waiting[this.#waitingHead++] = undefined as unknown as Pending;
    }
    this.#trimWaiting();
  }

  #trimWaiting(): void {
    const waiting = this.#waiting;
    while (this.#waitingHead < waiting.length && stateOf(waiting[this.#waitingHead]!) !== WAITING) {
      waiting[this.#waitingHead++] = undefined as unknown as Pending;
    }
    if (this.#waitingHead === waiting.length) {
      if (waiting.length > 0) this.#waiting = [];
      this.#waitingHead = 0;
    } else if (this.#waitingHead > 1024 && this.#waitingHead * 2 > waiting.length) {
      this.#waiting = waiting.slice(this.#waitingHead);
      this.#waitingHead = 0;
    }
  }

  #enqueue(pending: Pending): void {
    setState(pending, QUEUED);
    const last = this.#queue[this.#queue.length - 1];
    if (last && last.seq > pending.seq) this.#queueSorted = false;
    this.#queue.push(pending);
    this.#schedule();
  }

  /**
   * Flushes on the next check phase, so that publishes from several callbacks of one I/O phase
   * share a batch; or, `soon`, on a microtask: messages released by a settled batch need no
   * company, and waiting for the check phase would leave the broker idle.
   */
  #schedule(soon = false): void {
    if (this.#queue.length === 0) return;
    // A driver that sends one message per call gains nothing from waiting for company.
    if (soon || this.#batchSize() === 1) {
      if (!this.#flushSoon) {
        this.#flushSoon = true;
        queueMicrotask(() => {
          this.#flushSoon = false;
          this.#flush();
        });
      }
    } else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.#flush();
      });
    }
  }

  /**
   * Cuts the queue into driver batches. A keyed message waits while its key is busy, and all
   * messages of one key in this flush go into the same batch (drivers keep a batch's order per key),
   * unless the driver's calls are ordered.
   */
  #flush(): void {
    if (this.#queue.length === 0) return;
    if (!this.#queueSorted) this.#queue.sort((a, b) => a.seq - b.seq);
    this.#queueSorted = true;
    const size = this.#batchSize();
    const pipelined = this.#driver.capabilities.orderedSends === true;
    const batches: Pending[][] = [];
    const batchOfLane = new Map<string, number>();
    for (const pending of this.#queue) {
      if (stateOf(pending) !== QUEUED) continue; // its deadline passed while queued
      let current = batches.length - 1;
      if (current < 0 || batches[current]!.length >= size) {
        batches.push([]);
        current += 1;
      }
      const { lane } = pending;
      if (lane !== undefined) {
        const held = this.#held.get(lane);
        const behindHeld = held !== undefined && held[0]!.seq < pending.seq;
        const earlier = batchOfLane.get(lane);
        // Without ordered driver calls a key's messages of this flush must share one batch.
        const sameBatch = earlier === current;
        if (behindHeld || (!pipelined && earlier !== undefined && !sameBatch) || !this.#gate.admits(lane, pending.seq, pipelined || sameBatch)) {
          this.#hold(lane, pending);
          continue;
        }
        this.#gate.sent(lane, pending.seq);
        batchOfLane.set(lane, current);
      }
      setState(pending, SENDING);
      batches[current]!.push(pending);
    }
    this.#queue = [];
    for (const batch of batches) if (batch.length > 0) void this.#sendBatch(batch);
  }

  #batchSize(): number {
    return Math.max(1, this.#driver.capabilities.maxBatchSize);
  }

  #hold(lane: string, pending: Pending): void {
    setState(pending, HELD);
    const held = this.#held.get(lane);
    if (held === undefined) {
      this.#held.set(lane, [pending]);
    } else if (held[held.length - 1]!.seq < pending.seq) {
      held.push(pending); // the usual case: a newer message behind the older ones
    } else {
      // A released or retried message going back in its place (seq order).
      held.splice(seqIndex(held, pending.seq), 0, pending);
    }
  }

  /**
   * The lane's key may be free now: queue its oldest held messages again, `share` of them (a
   * lane can go in one batch per flush, so releasing more would only hold them again).
   */
  #release(lane: string, share = this.#batchSize()): void {
    const held = this.#held.get(lane);
    if (held === undefined) return;
    const released = held.length <= share ? held : held.splice(0, share);
    if (released === held) this.#held.delete(lane);
    for (const pending of released) this.#enqueue(pending);
  }

  async #sendBatch(batch: Pending[]): Promise<void> {
    let outcomes: SendOutcome[];
    try {
      // Untraced: the broker client's instrumentation adds no span of its own under mqkit's.
      // eslint-disable-next-line @typescript-eslint/unbound-method -- untraced() calls it with the driver as this (context.with's signature)
      outcomes = await untraced(this.#driver.send, this.#driver, batch.map((p) => p.envelope));
      if (outcomes.length !== batch.length) {
        throw new MqError('INTERNAL', `${this.#driver.name} driver returned ${outcomes.length} outcomes for ${batch.length} messages`);
      }
    } catch (err) {
      const error = toMqError(err, 'INTERNAL');
      outcomes = batch.map(() => ({ ok: false, error }));
    }
    const lanes = new Set<string>();
    const answers: number[] = [];
    batch.forEach((pending, i) => {
      if (stateOf(pending) === ORPHANED) {
        // Its caller already has TIMEOUT; the driver is done with it only now.
        setState(pending, DONE);
        if (pending.lane !== undefined) this.#gate.settled(pending.lane, pending.seq, false);
        this.#free(pending);
      } else if (this.#settle(pending, outcomes[i]!)) answers.push(i);
      if (pending.lane !== undefined) lanes.add(pending.lane);
    });
    // Messages held back behind this batch's keys may go now: about one batch's worth in all.
    const share = Math.ceil(this.#batchSize() / Math.max(1, lanes.size));
    for (const lane of lanes) this.#release(lane, share);
    this.#schedule(true);
    if (answers.length === 0) return;
    // Callers hear back on the next turn of the event loop: the released messages' driver call
    // (microtasks) reaches the socket first, and the callers' own next publishes run while the
    // broker works on it instead of in front of it.
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (const i of answers) this.#answer(batch[i]!, outcomes[i]!);
  }

  #answer(pending: Pending, outcome: SendOutcome): void {
    const { envelope } = pending;
    if (stateOf(pending) !== BOOKED) return;
    setState(pending, DONE);
    if (outcome.ok) {
      const receipt: PublishReceipt = { id: envelope.id, topic: envelope.topic, receipt: outcome.receipt };
      pending.resolve(pending.reject ? receipt : { ok: true, ...receipt });
    } else ReliableSender.#fail(pending, outcome.error);
    this.#answered();
  }

  static #fail(pending: Pending, error: MqError): void {
    if (pending.reject) pending.reject(error);
    else pending.resolve({ ok: false, id: pending.envelope.id, topic: pending.envelope.topic, error });
  }

  #answered(): void {
    this.#open -= 1;
    if (this.#open === 0 && this.#drainers.length > 0) for (const done of this.#drainers.splice(0)) done();
  }

  /** Books the outcome; true when the caller is to be answered (false: it will be retried). */
  #settle(pending: Pending, outcome: SendOutcome): boolean {
    const { envelope } = pending;
    const delay = outcome.ok ? 0 : backoffDelay(this.#policy.backoff, (pending.flags >>> 3) + 1);
    const retry = !outcome.ok && outcome.error.retryable && !this.#closed && Date.now() + delay < pending.bucket!.deadline;
    if (pending.lane !== undefined) this.#gate.settled(pending.lane, pending.seq, retry);
    if (retry) {
      pending.flags += 1 << 3; // one retry more
      pending.failure = outcome.error;
      setState(pending, BACKOFF);
      void sleep(delay).then(() => {
        if (stateOf(pending) !== BACKOFF) return; // its deadline passed meanwhile
        this.#enqueue(pending);
        if (pending.lane !== undefined) this.#release(pending.lane);
      });
      return false;
    }
    this.#untrack(pending);
    setState(pending, BOOKED);
    this.#free(pending);
    const error = outcome.ok ? undefined : outcome.error;
    this.#telemetry.sentOne(envelope.topic, pending.started, error);
    if (pending.span) Telemetry.endSpan(pending.span, error);
    return true;
  }

  /** The bucket for messages due at `deadline`, arming the timer when it is the first. */
  #bucketFor(deadline: number): DeadlineBucket {
    const slice = this.#slice;
    const at = Math.ceil(deadline / slice) * slice;
    const buckets = this.#buckets;
    const last = buckets[buckets.length - 1];
    // (A clock stepping back puts a message in the latest bucket: later, never earlier.)
    if (last !== undefined && last.deadline >= at) return last;
    const bucket: DeadlineBucket = { deadline: at, items: [] };
    buckets.push(bucket);
    if (this.#timer === undefined) this.#arm(at);
    return bucket;
  }

  #arm(at: number): void {
    // Beyond setTimeout's range (~24.8 days) Node would fire at once: wake up early and re-arm.
    this.#timer = setTimeout(() => this.#expireDue(), Math.min(MAX_TIMER_MS, Math.max(0, at - Date.now())));
    // Pending publishes keep the process alive through the driver's sockets, not through this.
    this.#timer.unref();
  }

  #untrack(pending: Pending): void {
    const bucket = pending.bucket;
    if (bucket === undefined) return;
    pending.bucket = undefined;
    const { items } = bucket;
    const last = items.pop()!;
    if (last !== pending) {
      items[pending.slot] = last;
      last.slot = pending.slot;
    }
  }

  /** The timer: every message whose deadline passed gets TIMEOUT; then the next bucket's timer. */
  #expireDue(): void {
    this.#timer = undefined;
    const now = Date.now();
    const buckets = this.#buckets;
    let head = this.#bucketHead;
    while (head < buckets.length) {
      const bucket = buckets[head]!;
      if (bucket.deadline > now) {
        if (bucket.items.length > 0 || head === buckets.length - 1) break;
      } else {
        const { items } = bucket;
        while (items.length > 0) this.#expire(items[items.length - 1]!);
      }
      head += 1; // past, or empty and not the one taking new messages
    }
    if (head === buckets.length) {
      this.#buckets = [];
      this.#bucketHead = 0;
      return;
    }
    this.#bucketHead = head;
    if (head > 64) {
      this.#buckets = buckets.slice(head);
      this.#bucketHead = 0;
    }
    this.#arm(buckets[head]!.deadline);
  }

  /**
   * The message's deadline passed: its caller is answered now, wherever the message is: TIMEOUT,
   * or the failure it was waiting to retry when it is not on its way.
   */
  #expire(pending: Pending): void {
    this.#untrack(pending);
    const { lane } = pending;
    const state = stateOf(pending);
    switch (state) {
      case WAITING:
        setState(pending, DONE);
        this.#admitWaiting(); // trims it, and a smaller message behind it may fit
        break;
      case SENDING:
        // Keeps its key and its room until the driver call settles (#sendBatch).
        setState(pending, ORPHANED);
        break;
      case HELD: {
        const held = this.#held.get(lane!);
        const at = held === undefined ? -1 : seqIndex(held, pending.seq);
        if (held !== undefined && held[at] === pending) {
          held.splice(at, 1);
          if (held.length === 0) this.#held.delete(lane!);
        }
      }
      // falls through
      case QUEUED: // (left in the queue: the flush skips it)
      case BACKOFF:
        // Not on its way: never sent now. A message back from a failed send still has its place
        // in the key gate: it gives it up, so its key's later messages may go.
        setState(pending, DONE);
        this.#free(pending);
        if (lane !== undefined) {
          this.#gate.abandon(lane, pending.seq);
          this.#release(lane);
          this.#schedule(true);
        }
        break;
      default:
        return; // already answered
    }
    const { envelope } = pending;
    // Waiting for a retry (not on its way): the caller gets the failure it waits on, as it would
    // had the retry timer fired first; timer order under load must not change the error.
    const error =
      state !== SENDING && pending.failure !== undefined
        ? pending.failure
        : new MqError('TIMEOUT', `publish not confirmed within ${this.#policy.timeoutMs} ms`, {
            details: { topic: envelope.topic, id: envelope.id, timeoutMs: this.#policy.timeoutMs, ...(pending.seq === 0 ? { reason: 'no room: maxPending / maxPendingBytes reached' } : {}) },
          });
    this.#telemetry.sentOne(envelope.topic, pending.started, error);
    if (pending.span) Telemetry.endSpan(pending.span, error);
    ReliableSender.#fail(pending, error);
    this.#answered();
  }

  /**
   * Resolves once every accepted publish has been answered: confirmed, failed, or TIMEOUT at its
   * deadline (so this never outlasts `timeoutMs` plus one driver answer). A driver call the broker
   * never answers may still be open then; closing the driver ends it.
   */
  drain(): Promise<void> {
    if (this.#open === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainers.push(resolve));
  }

  /** Accepted publishes not yet answered (for health). */
  get pending(): number {
    return this.#open;
  }

  /** Refuses new sends; messages already accepted still settle (see {@link ReliableSender.drain}). */
  close(): void {
    this.#closed = true;
  }
}

/** Index of `seq` (or where it belongs) in `items`, ascending by seq. */
function seqIndex(items: readonly Pending[], seq: number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid]!.seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
