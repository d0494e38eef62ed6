import { context as otelContext, trace, type Context, type Span } from '@opentelemetry/api';
import { z } from 'zod';
import { backoffDelay, DEFAULT_BACKOFF, sleep, type BackoffPolicy } from './backoff.ts';
import { parseOptions, unlimitedInt } from './config.ts';
import { settledWithin } from './deadline.ts';
import { jsonCodec, type Codec } from './codec.ts';
import type { Delivery, Handler, Middleware, NackOptions, Settlement as SettlementKind } from './delivery.ts';
import type { DeliverySink, Driver, DriverDelivery, ReceivedMessage, SubscriptionSpec } from './driver/driver.ts';
import { healthError, isoTime, type HealthError, type SubscriptionHealth } from './health.ts';
import { PullSubscription } from './pull-subscription.ts';
import { KeyIndex, Slots } from './slots.ts';
import { MqError } from './errors.ts';
import type { Logger } from './logger.ts';
import { HEADERS, type Envelope } from './message.ts';
import type { ReliableSender } from './publish.ts';
import { Telemetry, untraced, type ConsumerOperations } from './telemetry.ts';

/** Retry policy for failing handlers. */
export interface RetryPolicy extends BackoffPolicy {
  /**
   * Deliveries before the message is dead-lettered (1 = no retry; `Infinity` = never). Every
   * delivery counts, however it ended: a throw, a `nack()`, or a crash or close before it was
   * settled (where the broker counts deliveries). @default 5
   */
  readonly maxAttempts: number;
}

export const DEFAULT_RETRY: RetryPolicy = { ...DEFAULT_BACKOFF, maxAttempts: 5 };

/** Options of {@link Client.subscribe}. */
export interface SubscribeOptions<T = unknown> {
  /** Consumer group: competing consumers inside it, fan-out across groups. */
  group: string;
  /** Called once per delivery. Resolve to ack; throw to retry with backoff, then dead-letter. */
  handler: Handler<T>;
  /** Handlers running at once. @default 8 */
  concurrency?: number;
  /**
   * Keep per-key order: one message per key at a time, a retried message before later ones of
   * its key. Needs the adapter's `ordering: 'key'` capability. @default false
   */
  ordered?: boolean;
  /** Retry policy; partial values override the defaults. */
  retry?: Partial<RetryPolicy>;
  /** Dead-letter topic. @default `${topic}-dlq` */
  deadLetterTopic?: string;
  /** Payload codec. @default jsonCodec */
  codec?: Codec<T>;
  /** Handler middleware (e.g. `idempotent(store)`), outermost first. */
  middleware?: Middleware<T>[];
  /** Deliveries buffered beyond `concurrency` before intake pauses. @default concurrency */
  prefetch?: number;
  /** Adapter-specific options (see the adapter's README). */
  options?: Readonly<Record<string, unknown>>;
}

/** Options of {@link Subscription.close}. */
export interface CloseOptions {
  /** How long to wait for running handlers before abandoning them (unacked ⇒ redelivered). @default 10000 */
  timeoutMs?: number;
}

const retrySchema = z
  .object({
    maxAttempts: unlimitedInt(1).optional(),
    initialDelayMs: z.number().int().min(0).optional(),
    maxDelayMs: z.number().int().min(0).optional(),
    multiplier: z.number().min(1).refine(Number.isFinite, 'must be finite').optional(),
    jitter: z.boolean().optional(),
  })
  .strict()
  .transform((retry, ctx): RetryPolicy => {
    const policy = { ...DEFAULT_RETRY, ...retry };
    if (policy.maxDelayMs < policy.initialDelayMs) {
      ctx.addIssue({ code: 'custom', path: ['maxDelayMs'], message: `must be >= initialDelayMs (${policy.initialDelayMs})` });
    }
    return policy;
  });

const isFunction = (v: unknown): boolean => typeof v === 'function';

/** Every field of {@link SubscribeOptions}, checked once at subscribe: a typo or NaN never passes. */
const subscribeSchema = z
  .object({
    group: z.string().min(1),
    handler: z.custom<Handler<unknown>>(isFunction, 'must be a function'),
    concurrency: z.number().int().min(1).optional(),
    ordered: z.boolean().optional(),
    retry: retrySchema.optional(),
    deadLetterTopic: z.string().min(1).optional(),
    codec: z
      .object({ contentType: z.string(), encode: z.custom(isFunction, 'must be a function'), decode: z.custom(isFunction, 'must be a function') })
      .passthrough()
      .optional(),
    middleware: z.array(z.custom<Middleware<unknown>>(isFunction, 'must be a function')).optional(),
    prefetch: z.number().int().min(0).optional(),
    options: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

const closeSchema = z.object({ timeoutMs: z.number().int().min(0).optional() }).strict();

const MAX_ERROR_HEADER = 1024;

/**
 * What a handler threw, for the dead-letter header: an Error's name and message; another object
 * as JSON (String() of a plain object is "[object Object]"), else String().
 */
function thrownText(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  if (typeof error === 'object' && error !== null) {
    try {
      const json = JSON.stringify(error);
      if (json !== undefined) return json;
    } catch {
      // circular, or a toJSON that throws: String() below
    }
  }
  return String(error);
}

/** How long a dead-letter publish is retried before the delivery is handed back instead. */
const DEAD_LETTER_RETRY: BackoffPolicy = { initialDelayMs: 50, maxDelayMs: 1_000, multiplier: 2, jitter: true };
const DEAD_LETTER_TRIES = 3;
/** How long close() still waits, past its deadline, for settles already on their way. */
const SETTLE_GRACE_MS = 2_000;

/** How a delivery is settled. */
type Settlement = { readonly kind: 'ack' } | { readonly kind: 'nack'; readonly delayMs: number } | { readonly kind: 'dead'; readonly reason: string; readonly error?: unknown };

const ACK: Settlement = { kind: 'ack' };
const RESOLVED: Promise<void> = Promise.resolve();

/** One handler run: what {@link SubscriptionRuntime} needs when it ends. */
class HandlerRun<T> {
  readonly entry: Entry<T>;
  readonly span: Span;
  /** From {@link Telemetry.now}: 0 when no metrics SDK times it. */
  readonly started: number;
  constructor(entry: Entry<T>, span: Span, started: number) {
    this.entry = entry;
    this.span = span;
    this.started = started;
  }
}

/** What a {@link Delivery} needs from its runtime to settle itself. */
interface Settler<T> {
  settle(entry: Entry<T>, settlement: Settlement): Promise<void>;
  checkNackDelay(delayMs: number): MqError | undefined;
}

/**
 * One delivery inside the runtime, and the {@link Delivery} its handler sees: a class rather than
 * an object literal with closures and a getter, because one is made per message.
 */
class Entry<T> implements Delivery<T> {
  readonly driverDelivery: DriverDelivery;
  readonly lane: string | undefined;
  settled = false;
  settlement: SettlementKind | undefined = undefined;
  /** The settle on its way to the broker (ack, nack or the dead-letter publish), if any. */
  settling: Promise<void> | undefined = undefined;
  abandoned = false;
  /** The context of its recording process span: settle spans go under it (undefined: not traced). */
  trace: Context | undefined = undefined;
  /** Its index in the runtime's running set (-1: not running). */
  slot = -1;
  readonly id: string;
  readonly topic: string;
  readonly group: string;
  readonly key: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  payload!: T;
  readonly body: Uint8Array;
  readonly timestamp: number;
  readonly attempt: number;
  readonly meta: Readonly<Record<string, string>>;
  readonly #settler: Settler<T>;
  /** Made on first use: most handlers never look at the signal. */
  #abort: AbortController | undefined;
  #ack: (() => Promise<void>) | undefined;
  #nack: ((options?: NackOptions) => Promise<void>) | undefined;
  #deadLetter: ((reason: string) => Promise<void>) | undefined;

  constructor(settler: Settler<T>, topic: string, group: string, driverDelivery: DriverDelivery, lane: string | undefined) {
    const { envelope } = driverDelivery;
    this.#settler = settler;
    this.driverDelivery = driverDelivery;
    this.lane = lane;
    this.id = envelope.id;
    this.topic = topic;
    this.group = group;
    this.key = envelope.key;
    this.headers = envelope.headers;
    this.body = envelope.body;
    this.timestamp = envelope.timestamp;
    this.attempt = driverDelivery.attempt;
    this.meta = driverDelivery.meta ?? NO_META;
  }

  // Bound on first use, so that `const { ack } = delivery` works while a handler that lets the
  // runtime settle costs no closures.
  get ack(): () => Promise<void> {
    return (this.#ack ??= () => this.#settler.settle(this, ACK));
  }

  get nack(): (options?: NackOptions) => Promise<void> {
    return (this.#nack ??= (options?: NackOptions) => {
      const delayMs = options?.delayMs ?? 0;
      const invalid = this.#settler.checkNackDelay(delayMs);
      return invalid ? Promise.reject(invalid) : this.#settler.settle(this, { kind: 'nack', delayMs });
    });
  }

  get deadLetter(): (reason: string) => Promise<void> {
    return (this.#deadLetter ??= (reason: string) => this.#settler.settle(this, { kind: 'dead', reason }));
  }

  get signal(): AbortSignal {
    this.#abort ??= new AbortController();
    return this.#abort.signal;
  }

  /** The subscription gave up on it (close deadline): handlers see the signal aborted. */
  abandon(reason: MqError): void {
    this.abandoned = true;
    this.#abort ??= new AbortController();
    this.#abort.abort(reason);
  }
}

const NO_META: Readonly<Record<string, string>> = Object.freeze({});

/** A running subscription. */
export interface Subscription {
  readonly topic: string;
  readonly group: string;
  /** Handlers running now. */
  readonly inFlight: number;
  /** Stop intake, wait for running handlers (up to the deadline), release the rest. Safe to call twice. */
  close(options?: CloseOptions): Promise<void>;
}

/** @internal everything a subscription needs from its client. */
export interface SubscriptionDeps {
  readonly driver: Driver;
  readonly sender: ReliableSender;
  readonly telemetry: Telemetry;
  readonly logger: Logger;
}

/**
 * The consumer runtime, written once for every adapter: bounded concurrency, per-key lanes,
 * ack on success, retry with backoff through the broker, dead-lettering, backpressure, draining.
 */
export class SubscriptionRuntime<T> implements Subscription {
  readonly topic: string;
  readonly group: string;
  readonly #deps: SubscriptionDeps;
  readonly #handler: (d: Delivery<T>) => Promise<void> | void;
  readonly #codec: Codec<T>;
  readonly #retry: RetryPolicy;
  readonly #concurrency: number;
  readonly #maxBuffered: number;
  readonly #ordered: boolean;
  readonly #deadLetterTopic: string;
  /** Span names and metric attributes of this subscription's operations, made once. */
  readonly #ops: ConsumerOperations;
  readonly #settler: Settler<T>;
  /** Accepted, not started, from `#pendingHead` on (before it: taken; no O(n) shift per message). */
  #pending: Array<Entry<T> | undefined> = [];
  #pendingHead = 0;
  // Not Sets: each gains and loses an entry per message (see slots.ts).
  readonly #running = new Slots<Entry<T>>();
  readonly #busyLanes = new KeyIndex<true>();
  readonly #idleWaiters: Array<() => void> = [];
  #driverSub: PullSubscription<ReceivedMessage> | undefined;
  #paused = false;
  #closing: Promise<void> | undefined;
  #lastReceiveError: HealthError | undefined;
  #lastSettleError: HealthError | undefined;

  constructor(topic: string, options: SubscribeOptions<T>, retry: RetryPolicy, deps: SubscriptionDeps) {
    this.topic = topic;
    this.group = options.group;
    this.#deps = deps;
    this.#codec = (options.codec ?? jsonCodec) as Codec<T>;
    this.#retry = retry;
    this.#concurrency = options.concurrency ?? 8;
    this.#maxBuffered = this.#concurrency + (options.prefetch ?? this.#concurrency);
    this.#ordered = options.ordered ?? false;
    this.#deadLetterTopic = options.deadLetterTopic ?? `${topic}-dlq`;
    this.#ops = deps.telemetry.consumer(topic, options.group);
    this.#settler = {
      settle: (entry, settlement) => this.#settle(entry, settlement),
      checkNackDelay: (delayMs) => this.#checkNackDelay(delayMs),
    };
    const chain = [...(options.middleware ?? [])];
    const handler = options.handler;
    this.#handler =
      chain.length === 0
        ? handler
        : (delivery) => {
            const run = (i: number): Promise<void> => {
              const mw = chain[i];
              return mw ? mw(delivery, () => run(i + 1)) : Promise.resolve(handler(delivery));
            };
            return run(0);
          };
  }

  /** @internal validates options and starts the driver subscription. */
  static async start<T>(topic: string, options: SubscribeOptions<T>, deps: SubscriptionDeps): Promise<SubscriptionRuntime<T>> {
    const retry = validate(topic, options, deps.driver);
    const runtime = new SubscriptionRuntime(topic, options, retry, deps);
    const spec: SubscriptionSpec = {
      topic,
      group: options.group,
      maxInFlight: runtime.#maxBuffered,
      ordered: runtime.#ordered,
      maxAttempts: runtime.#retry.maxAttempts,
      deadLetterTopic: runtime.#deadLetterTopic,
      options: options.options ?? {},
    };
    const sink: DeliverySink = {
      deliver: (d) => runtime.#accept(d),
      error: (e) => {
        runtime.#lastReceiveError = healthError(e);
        deps.logger.error({ err: e, topic, group: options.group }, 'subscription error');
      },
    };
    // Untraced: the receive loops (and the broker client's callbacks they start) make no spans of
    // their own; each delivery's process span has its explicit parent.
    // eslint-disable-next-line @typescript-eslint/unbound-method -- untraced() calls it with the driver as this (context.with's signature)
    const receiver = await untraced(deps.driver.receiver, deps.driver, spec);
    runtime.#driverSub = untraced(() => new PullSubscription(receiver, { spec, sink, logger: deps.logger }).start(), undefined);
    return runtime;
  }

  get inFlight(): number {
    return this.#running.size;
  }

  /** @internal its part of {@link Client.health}; `failingSince` in epoch ms for the verdict. */
  health(): SubscriptionHealth & { readonly failingSinceMs: number | undefined } {
    const failingSinceMs = this.#driverSub?.receiveFailingSince;
    const state = this.#closing ? 'closed' : failingSinceMs !== undefined ? 'failing' : this.#paused ? 'paused' : 'running';
    return {
      topic: this.topic,
      group: this.group,
      state,
      inFlight: this.#running.size,
      failingSince: isoTime(failingSinceMs),
      failingSinceMs,
      lastReceiveError: this.#lastReceiveError,
      lastSettleError: this.#lastSettleError,
    };
  }

  #accept(driverDelivery: DriverDelivery): void {
    // Intake has stopped: leave it unsettled; the driver gives it back on close.
    if (this.#closing) return;
    const lane = this.#ordered ? (driverDelivery.orderingKey ?? driverDelivery.envelope.key) : undefined;
    this.#pending.push(new Entry<T>(this.#settler, this.topic, this.group, driverDelivery, lane));
    this.#pump();
  }

  get #pendingCount(): number {
    return this.#pending.length - this.#pendingHead;
  }

  #pump(): void {
    if (this.#closing) return;
    const pending = this.#pending;
    for (let i = this.#pendingHead; i < pending.length && this.#running.size < this.#concurrency; ) {
      const entry = pending[i]!;
      if (entry.lane !== undefined && this.#busyLanes.has(entry.lane)) {
        i += 1; // its key is busy: later entries of other keys may start
        continue;
      }
      if (i === this.#pendingHead) {
        // The usual case: take from the head without shifting the array.
        pending[i] = undefined;
        i += 1;
        this.#pendingHead = i;
      } else {
        pending.splice(i, 1);
      }
      this.#start(entry);
    }
    // Drop the consumed prefix once it dominates (amortised O(1) per message).
    if (this.#pendingHead > 64 && this.#pendingHead * 2 > pending.length) {
      this.#pending = pending.slice(this.#pendingHead);
      this.#pendingHead = 0;
    }
    this.#backpressure();
  }

  #start(entry: Entry<T>): void {
    this.#running.add(entry);
    if (entry.lane !== undefined) this.#busyLanes.set(entry.lane, true);
    void this.#process(entry).then(() => this.#finished(entry));
  }

  /** Frees the slot of a delivery processed to its settlement. */
  #finished(entry: Entry<T>): void {
    this.#running.delete(entry);
    if (entry.lane !== undefined) this.#busyLanes.delete(entry.lane);
    if (this.#running.size === 0 && this.#idleWaiters.length > 0) this.#idleWaiters.splice(0).forEach((w) => w());
    this.#pump();
  }

  #backpressure(): void {
    const buffered = this.#pendingCount + this.#running.size;
    if (!this.#paused && buffered >= this.#maxBuffered) {
      this.#paused = true;
      this.#driverSub?.pause();
    } else if (this.#paused && buffered < this.#maxBuffered) {
      this.#paused = false;
      this.#driverSub?.resume();
    }
  }

  /**
   * Runs one delivery to its settlement. Never rejects. Not an async function, on purpose: it runs
   * once per message, and an async function keeps every local of its frame alive across its
   * awaits (about 1 KB per message here); a synchronous handler settles without one.
   */
  #process(entry: Entry<T>): Promise<void> {
    const { envelope, attempt } = entry.driverDelivery;
    if (attempt > this.#retry.maxAttempts) {
      // Earlier deliveries ended without a settle (a crash, a close deadline): the limit still holds.
      this.#deps.logger.warn({ topic: this.topic, group: this.group, id: envelope.id, attempt }, 'delivery is past retry.maxAttempts; dead-lettering it unhandled');
      return this.#settleSafely(entry, { kind: 'dead', reason: 'max-attempts' });
    }
    try {
      entry.payload = this.#codec.decode(envelope.body);
    } catch (err) {
      this.#deps.logger.warn({ topic: this.topic, group: this.group, id: envelope.id }, 'payload cannot be decoded; dead-lettering');
      return this.#settleSafely(entry, { kind: 'dead', reason: 'decode-failed', error: err });
    }
    const { telemetry } = this.#deps;
    const parent = telemetry.extract(envelope.headers);
    const span = telemetry.startProcess(this.#ops.process, parent, entry.id);
    // The handler runs in its process span (its own spans are children); a context is made only
    // for a span that records.
    const active = span.isRecording() ? (entry.trace = trace.setSpan(parent, span)) : parent;
    telemetry.consumed.add(1, this.#ops.process.attributes);
    const run = new HandlerRun(entry, span, telemetry.now());
    let result: Promise<void> | void;
    try {
      result = otelContext.with(active, this.#handler, undefined, entry);
    } catch (err) {
      return this.#handled(run, true, err);
    }
    if (result === undefined || typeof result.then !== 'function') return this.#handled(run, false, undefined);
    return Promise.resolve(result).then(
      () => this.#handled(run, false, undefined),
      (err: unknown) => this.#handled(run, true, err),
    );
  }

  /** After the handler: telemetry, then the settle the runtime owes (none if the handler settled). */
  #handled(run: HandlerRun<T>, failed: boolean, error: unknown): Promise<void> {
    const { entry } = run;
    const failure: unknown = failed ? (error ?? new Error('handler threw a nullish value')) : undefined;
    this.#deps.telemetry.processed(this.#ops.process, run.started, failure);
    Telemetry.endSpan(run.span, failure);
    if (entry.settled || entry.abandoned) {
      if (failed) this.#deps.logger.warn({ err: failure, id: entry.id }, 'handler failed after settling its delivery');
      return RESOLVED;
    }
    if (!failed) return this.#settleSafely(entry, ACK);
    const { attempt } = entry;
    if (attempt >= this.#retry.maxAttempts) return this.#settleSafely(entry, { kind: 'dead', reason: 'handler-failed', error: failure });
    const delayMs = this.#clampDelay(backoffDelay(this.#retry, attempt));
    this.#deps.logger.debug({ id: entry.id, attempt, delayMs }, 'handler failed; retrying');
    return this.#settleSafely(entry, { kind: 'nack', delayMs });
  }

  #clampDelay(delayMs: number): number {
    const { delay } = this.#deps.driver.capabilities;
    return delay.kind === 'none' ? 0 : Math.min(delayMs, delay.maxMs);
  }

  #checkNackDelay(delayMs: number): MqError | undefined {
    if (!Number.isFinite(delayMs) || delayMs < 0) return new MqError('INVALID_MESSAGE', 'nack delayMs must be a finite number >= 0');
    const { delay } = this.#deps.driver.capabilities;
    if (delayMs > 0 && (delay.kind === 'none' || delayMs > delay.maxMs)) {
      return new MqError('UNSUPPORTED', `${this.#deps.driver.name} cannot delay a redelivery by ${delayMs} ms`);
    }
    return undefined;
  }

  /** Settles once; a second settle, or one after the delivery was abandoned, is refused. */
  #settle(entry: Entry<T>, settlement: Settlement): Promise<void> {
    if (entry.abandoned) return Promise.reject(new MqError('CLOSED', 'delivery was abandoned when its subscription closed; it will be redelivered'));
    if (entry.settled) return Promise.reject(new MqError('INVALID_MESSAGE', 'delivery was already settled'));
    entry.settled = true;
    if (settlement.kind === 'nack' && entry.attempt >= this.#retry.maxAttempts) {
      // Every delivery counts: a handed-back message at its last attempt goes to the DLQ.
      settlement = { kind: 'dead', reason: 'max-attempts' };
    }
    entry.settlement = settlement.kind === 'dead' ? 'dead-letter' : settlement.kind;
    const { telemetry } = this.#deps;
    // Timed and traced only when something records: no closure per message otherwise.
    if (entry.trace === undefined && !telemetry.metered) return (entry.settling = this.#runSettle(entry, settlement));
    return (entry.settling = telemetry.settle(this.#ops[settlement.kind], entry.trace, entry.id, this.#runSettle, this, entry, settlement));
  }

  #runSettle(entry: Entry<T>, settlement: Settlement): Promise<void> {
    switch (settlement.kind) {
      case 'ack':
        return entry.driverDelivery.ack();
      case 'nack':
        return this.#nack(entry, settlement.delayMs);
      case 'dead':
        return this.#deadLetter(entry, settlement.reason, settlement.error);
    }
  }

  /**
   * Runtime-initiated settles: failures are logged, since the broker redelivers anyway. Not an
   * async function: on the ack of every successful handler, no extra frame.
   */
  #settleSafely(entry: Entry<T>, settlement: Settlement): Promise<void> {
    return this.#settle(entry, settlement).catch((err: unknown) => {
      this.#lastSettleError = healthError(err);
      this.#deps.logger.warn({ err, id: entry.id, topic: this.topic }, 'settling a delivery failed; the broker will redeliver it');
    });
  }

  async #nack(entry: Entry<T>, delayMs: number): Promise<void> {
    // A handler that hands back every delivery at once must not starve timers, heartbeats and
    // close(): each immediate redelivery waits one turn of the event loop.
    if (delayMs === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    await entry.driverDelivery.nack(delayMs);
  }

  /**
   * Moves the delivery to the dead-letter topic. When that publish fails it is tried again with
   * backoff; if it still fails the delivery is handed back with a delay (so it comes back past
   * its limit and is dead-lettered again), never left unsettled: an unsettled delivery would hold
   * a partition's offset, a prefetch slot or an ordered key for good. The failure is logged as
   * an error and counted; a handler that dead-lettered the message itself gets the rejection.
   */
  async #deadLetter(entry: Entry<T>, reason: string, error?: unknown): Promise<void> {
    const { driverDelivery } = entry;
    const dead = this.#deadEnvelope(entry, reason, error);
    let failure: unknown;
    for (let tries = 1; tries <= DEAD_LETTER_TRIES; tries++) {
      try {
        await this.#sendDead(driverDelivery, dead);
        return;
      } catch (err) {
        failure = err;
        if (MqError.is(err, 'CLOSED') || tries === DEAD_LETTER_TRIES) break;
        await sleep(backoffDelay(DEAD_LETTER_RETRY, tries));
      }
    }
    const delayMs = this.#clampDelay(backoffDelay(this.#retry, Math.min(driverDelivery.attempt, 64)));
    this.#deps.logger.error(
      { err: failure, id: entry.id, topic: this.topic, group: this.group, deadLetterTopic: this.#deadLetterTopic, retryInMs: delayMs },
      'dead-letter publish failed; the message is handed back and will be dead-lettered again',
    );
    await driverDelivery.nack(delayMs);
    throw failure;
  }

  async #sendDead(driverDelivery: DriverDelivery, dead: Envelope): Promise<void> {
    if (driverDelivery.deadLetter) {
      await driverDelivery.deadLetter(dead);
      return;
    }
    const [outcome] = await this.#deps.sender.send([dead], false);
    if (!outcome?.ok) {
      throw outcome?.error ?? new MqError('INTERNAL', 'dead-letter publish returned no outcome');
    }
    await driverDelivery.ack();
  }

  #deadEnvelope(entry: Entry<T>, reason: string, error?: unknown): Envelope {
    const { driverDelivery } = entry;
    const { envelope, attempt } = driverDelivery;
    const headers: Record<string, string> = {
      ...envelope.headers,
      ...Object.fromEntries(Object.entries(driverDelivery.meta ?? {}).map(([k, v]) => [`x-mqkit-original-${k}`, v])),
      [HEADERS.deadLetterReason]: reason,
      [HEADERS.deadLetterAttempts]: String(attempt),
      [HEADERS.originalTopic]: envelope.topic,
      [HEADERS.originalGroup]: this.group,
      [HEADERS.deadLetteredAt]: new Date().toISOString(),
    };
    if (error !== undefined) {
      headers[HEADERS.deadLetterError] = thrownText(error).slice(0, MAX_ERROR_HEADER);
    }
    return { ...envelope, topic: this.#deadLetterTopic, headers, delayMs: undefined };
  }

  close(options: CloseOptions = {}): Promise<void> {
    let timeoutMs: number;
    try {
      timeoutMs = parseOptions(closeSchema, options ?? {}, 'close').timeoutMs ?? 10_000;
    } catch (err) {
      return Promise.reject(err);
    }
    this.#closing ??= this.#close(timeoutMs);
    return this.#closing;
  }

  async #close(timeoutMs: number): Promise<void> {
    this.#driverSub?.pause();
    // never started: the driver gives them back on close
    this.#pending = [];
    this.#pendingHead = 0;
    if (this.#running.size > 0) {
      const idle = new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      if (!(await settledWithin(idle, timeoutMs))) {
        const reason = new MqError('CLOSED', 'subscription closed before the handler finished');
        const settling: Array<Promise<void>> = [];
        for (const entry of this.#running.list()) {
          entry.abandon(reason);
          if (entry.settling) settling.push(entry.settling);
        }
        this.#deps.logger.warn({ topic: this.topic, group: this.group, abandoned: this.#running.size }, 'close deadline passed; abandoning running handlers');
        // A settle already on its way (say, a dead-letter publish and then its ack) gets a short
        // grace: cutting it off would leave a second copy in the DLQ, or redeliver a message
        // that was in fact dead-lettered.
        if (settling.length > 0) await settledWithin(Promise.allSettled(settling), SETTLE_GRACE_MS);
      }
    }
    await this.#driverSub?.close();
  }
}

/** Checks the topic and every option; returns the full retry policy. Throws CONFIG / UNSUPPORTED / INVALID_MESSAGE. */
function validate<T>(topic: string, options: SubscribeOptions<T>, driver: Driver): RetryPolicy {
  if (typeof topic !== 'string' || topic.length === 0) throw new MqError('INVALID_MESSAGE', 'topic must be a non-empty string');
  if (!driver.capabilities.topicPattern.test(topic)) {
    throw new MqError('INVALID_MESSAGE', `topic "${topic}" is not a valid ${driver.name} topic name`);
  }
  const parsed = parseOptions(subscribeSchema, options, 'subscribe');
  if (parsed.ordered && driver.capabilities.ordering !== 'key') {
    throw new MqError('UNSUPPORTED', `${driver.name} does not keep per-key order; subscribe without ordered: true`);
  }
  const dlq = parsed.deadLetterTopic ?? `${topic}-dlq`;
  if (!driver.capabilities.topicPattern.test(dlq)) throw new MqError('CONFIG', `dead-letter topic "${dlq}" is not a valid ${driver.name} topic name`);
  return parsed.retry ?? DEFAULT_RETRY;
}
