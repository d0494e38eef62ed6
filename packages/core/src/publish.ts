import { randomUUID } from 'node:crypto';
import type { Span } from '@opentelemetry/api';
import { backoffDelay, DEFAULT_BACKOFF, sleep, type BackoffPolicy } from './backoff.ts';
import { encodePayload, jsonCodec, type Codec } from './codec.ts';
import type { Capabilities, Driver, SendOutcome } from './driver/driver.ts';
import { MqError, toMqError } from './errors.ts';
import { envelopeSize, envelopeSizeBound, HEADERS, RESERVED_HEADER_PREFIX, type Envelope } from './message.ts';
import { KeyGate } from './key-gate.ts';
import { Telemetry } from './telemetry.ts';

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
   * How long publish() keeps retrying retryable failures (connection loss, broker restart,
   * unconfirmed) before it rejects. @default 30000
   */
  readonly timeoutMs: number;
  /** Backoff between those retries. */
  readonly backoff: BackoffPolicy;
}

export const DEFAULT_PUBLISH_POLICY: PublishPolicy = {
  timeoutMs: 30_000,
  backoff: { ...DEFAULT_BACKOFF, initialDelayMs: 100, maxDelayMs: 2_000 },
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

/**
 * Turns a user's message into an {@link Envelope}, checking it against the adapter's limits.
 * Throws INVALID_MESSAGE, TOO_LARGE or UNSUPPORTED; nothing is sent.
 */
export function buildEnvelope<T>(driver: Driver, message: OutgoingMessage<T>, internalHeaders = false): Envelope {
  return envelopeOf(driver, message.topic, message.payload, message, internalHeaders);
}

/** {@link buildEnvelope} with the topic and payload apart from the options (no object spread per publish). */
export function envelopeOf<T>(driver: Driver, topic: string, payload: T, message: PublishOptions<T>, internalHeaders = false): Envelope {
  const caps = driver.capabilities;
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new MqError('INVALID_MESSAGE', 'topic must be a non-empty string');
  }
  if (topic !== lastValidTopic.get(caps) && !isValidTopic(caps, topic)) {
    throw new MqError('INVALID_MESSAGE', `topic "${topic}" is not a valid ${driver.name} topic name (${caps.topicPattern})`, {
      details: { topic },
    });
  }
  const id = message.id ?? newMessageId();
  if (typeof id !== 'string' || id.length === 0 || id.length > 256) {
    throw new MqError('INVALID_MESSAGE', 'message id must be a non-empty string of at most 256 characters', { details: { topic } });
  }
  if (message.key !== undefined && (typeof message.key !== 'string' || message.key.length === 0)) {
    throw new MqError('INVALID_MESSAGE', 'key must be a non-empty string when given', { details: { topic, id } });
  }
  const delayMs = message.delayMs ?? 0;
  if (!Number.isFinite(delayMs) || delayMs < 0) {
    throw new MqError('INVALID_MESSAGE', 'delayMs must be a finite number >= 0', { details: { topic, id } });
  }
  if (delayMs > 0 && (caps.delay.kind === 'none' || delayMs > caps.delay.maxMs)) {
    throw new MqError('UNSUPPORTED', `${driver.name} cannot delay a message by ${delayMs} ms (max ${caps.delay.maxMs} ms)`, {
      details: { topic, id },
    });
  }
  const headers: Record<string, string> = {};
  const given = message.headers;
  if (given !== undefined && given !== null) for (const name of Object.keys(given)) {
    const value = given[name];
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

interface Pending {
  /** Publish order, for per-key ordering. */
  readonly seq: number;
  readonly lane: string | undefined;
  envelope: Envelope;
  deadline: number;
  retries: number;
  span: Span | undefined;
  /** With `reject`: resolves with a {@link PublishReceipt}; without: with a {@link PublishOutcome}. */
  resolve(value: PublishOutcome | PublishReceipt): void;
  /** Set for single publishes, whose failure rejects. */
  reject: ((error: MqError) => void) | undefined;
  /** The outcome booked by a settled send, until the caller is answered. */
  outcome: SendOutcome | undefined;
}

/**
 * Reliable send: coalesces concurrent publishes into driver batches (one `send` per tick per
 * batch, never one-at-a-time), retries retryable failures with backoff until each message's
 * deadline, and resolves each message with its own outcome. Messages of one key go out in
 * publish order: a message waiting to be retried holds back the later ones of its key, and never
 * two driver calls with the same key at once, unless the driver's calls are ordered
 * (`capabilities.orderedSends`), in which case batches of one key are pipelined.
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
  #heldCount = 0;
  #scheduled = false;
  #flushSoon = false;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(driver: Driver, telemetry: Telemetry, policy: PublishPolicy) {
    this.#driver = driver;
    this.#telemetry = telemetry;
    this.#policy = policy;
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
    const deadline = Date.now() + this.#policy.timeoutMs;
    return Promise.all(
      envelopes.map((envelope) => new Promise<PublishOutcome>((resolve) => this.#accept(envelope, traced, owned, deadline, resolve as Pending['resolve'], undefined))),
    );
  }

  /**
   * One envelope that the caller hands over (`buildEnvelope`'s fresh result): resolves with its
   * receipt, rejects with its error. One promise per publish, no outcome object in between.
   */
  sendOwned(envelope: Envelope): Promise<PublishReceipt> {
    if (this.#closed) return Promise.reject(new MqError('CLOSED', 'client is closed'));
    const deadline = Date.now() + this.#policy.timeoutMs;
    return new Promise<PublishReceipt>((resolve, reject) => this.#accept(envelope, true, true, deadline, resolve as Pending['resolve'], reject));
  }

  #accept(
    original: Envelope,
    traced: boolean,
    owned: boolean,
    deadline: number,
    resolve: Pending['resolve'],
    reject: Pending['reject'],
  ): void {
    let envelope = original;
    let span: Span | undefined;
    if (traced) {
      // The trace context goes into the headers; never into a caller's object.
      const headers = owned ? (original.headers as Record<string, string>) : { ...original.headers };
      const started = this.#telemetry.startPublish(original.topic, headers);
      // A span no SDK records needs no end: do not keep one alive per pending message.
      if (started.isRecording()) span = started;
      if (!owned) envelope = { ...original, headers };
    }
    this.#telemetry.published.add(1, this.#telemetry.attributes(envelope.topic));
    const lane = KeyGate.laneOf(envelope.topic, envelope.key);
    this.#enqueue({ seq: ++this.#seq, lane, envelope, deadline, retries: 0, span, resolve, reject, outcome: undefined });
  }

  #enqueue(pending: Pending): void {
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
      batches[current]!.push(pending);
    }
    this.#queue = [];
    for (const batch of batches) {
      if (batch.length === 0) continue;
      const done = this.#sendBatch(batch);
      this.#inFlight.add(done);
      void done.finally(() => this.#inFlight.delete(done));
    }
  }

  #batchSize(): number {
    return Math.max(1, this.#driver.capabilities.maxBatchSize);
  }

  #hold(lane: string, pending: Pending): void {
    const held = this.#held.get(lane);
    this.#heldCount += 1;
    if (held === undefined) {
      this.#held.set(lane, [pending]);
    } else if (held[held.length - 1]!.seq < pending.seq) {
      held.push(pending); // the usual case: a newer message behind the older ones
    } else {
      // A released or retried message going back in its place (seq order).
      let lo = 0;
      let hi = held.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (held[mid]!.seq < pending.seq) lo = mid + 1;
        else hi = mid;
      }
      held.splice(lo, 0, pending);
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
    this.#heldCount -= released.length;
    for (const pending of released) this.#enqueue(pending);
  }

  async #sendBatch(batch: Pending[]): Promise<void> {
    let outcomes: SendOutcome[];
    try {
      outcomes = await this.#driver.send(batch.map((p) => p.envelope));
      if (outcomes.length !== batch.length) {
        throw new MqError('INTERNAL', `${this.#driver.name} driver returned ${outcomes.length} outcomes for ${batch.length} messages`);
      }
    } catch (err) {
      const error = toMqError(err, 'INTERNAL');
      outcomes = batch.map(() => ({ ok: false, error }));
    }
    const lanes = new Set<string>();
    const answers: Pending[] = [];
    batch.forEach((pending, i) => {
      if (this.#settle(pending, outcomes[i]!)) answers.push(pending);
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
    for (const pending of answers) ReliableSender.#answer(pending);
  }

  static #answer(pending: Pending): void {
    const { envelope, outcome } = pending;
    pending.outcome = undefined;
    if (outcome === undefined) return;
    if (outcome.ok) {
      const receipt: PublishReceipt = { id: envelope.id, topic: envelope.topic, receipt: outcome.receipt };
      pending.resolve(pending.reject ? receipt : { ok: true, ...receipt });
    } else if (pending.reject) pending.reject(outcome.error);
    else pending.resolve({ ok: false, id: envelope.id, topic: envelope.topic, error: outcome.error });
  }

  /** Books the outcome; true when the caller is to be answered (false: it will be retried). */
  #settle(pending: Pending, outcome: SendOutcome): boolean {
    const { envelope } = pending;
    const attrs = this.#telemetry.attributes(envelope.topic);
    const delay = outcome.ok ? 0 : backoffDelay(this.#policy.backoff, pending.retries + 1);
    const retry = !outcome.ok && outcome.error.retryable && !this.#closed && Date.now() + delay < pending.deadline;
    if (pending.lane !== undefined) this.#gate.settled(pending.lane, pending.seq, retry);
    if (outcome.ok) {
      this.#telemetry.confirmed.add(1, attrs);
      if (pending.span) Telemetry.endSpan(pending.span);
      pending.outcome = outcome;
      return true;
    }
    const { error } = outcome;
    if (retry) {
      pending.retries += 1;
      const wait = sleep(delay).then(() => {
        this.#enqueue(pending);
        if (pending.lane !== undefined) this.#release(pending.lane);
      });
      this.#inFlight.add(wait);
      void wait.finally(() => this.#inFlight.delete(wait));
      return false;
    }
    this.#telemetry.failed.add(1, { ...attrs, 'error.type': error.code });
    if (pending.span) Telemetry.endSpan(pending.span, error);
    pending.outcome = outcome;
    return true;
  }

  /** Waits for every accepted publish to settle (retries included, up to their deadlines). */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0 || this.#queue.length > 0 || this.#scheduled || this.#flushSoon || this.#heldCount > 0) {
      if (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
      else if (this.#heldCount > 0 && this.#queue.length === 0 && !this.#scheduled && !this.#flushSoon) {
        // Held with nothing in flight to free their keys: cannot happen by design; never hang on it.
        for (const lane of [...this.#held.keys()]) this.#release(lane);
      } else await new Promise((r) => setImmediate(r));
    }
  }

  /** Refuses new sends; messages already accepted still settle (see {@link ReliableSender.drain}). */
  close(): void {
    this.#closed = true;
  }
}
