import { context as otelContext } from '@opentelemetry/api';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.ts';
import { jsonCodec, type Codec } from './codec.ts';
import type { Delivery, Handler, Middleware, NackOptions } from './delivery.ts';
import type { Driver, DriverDelivery, DriverSubscription, SubscriptionSpec } from './driver/driver.ts';
import { MqError } from './errors.ts';
import type { Logger } from './logger.ts';
import { HEADERS, type Envelope } from './message.ts';
import type { ReliableSender } from './publish.ts';
import { Telemetry } from './telemetry.ts';

/** Retry policy for failing handlers. */
export interface RetryPolicy extends BackoffPolicy {
  /** Deliveries before the message is dead-lettered (1 = no retry). @default 5 */
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

const MAX_ERROR_HEADER = 1024;

interface Entry {
  readonly driverDelivery: DriverDelivery;
  readonly lane: string | undefined;
  settled: boolean;
  abandoned: boolean;
  readonly abort: AbortController;
}

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
  readonly #handler: (d: Delivery<T>) => Promise<void>;
  readonly #codec: Codec<T>;
  readonly #retry: RetryPolicy;
  readonly #concurrency: number;
  readonly #maxBuffered: number;
  readonly #ordered: boolean;
  readonly #deadLetterTopic: string;
  readonly #pending: Entry[] = [];
  readonly #running = new Set<Entry>();
  readonly #busyLanes = new Set<string>();
  readonly #idleWaiters: Array<() => void> = [];
  #driverSub: DriverSubscription | undefined;
  #paused = false;
  #closing: Promise<void> | undefined;

  constructor(topic: string, options: SubscribeOptions<T>, deps: SubscriptionDeps) {
    this.topic = topic;
    this.group = options.group;
    this.#deps = deps;
    this.#codec = (options.codec ?? jsonCodec) as Codec<T>;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#concurrency = options.concurrency ?? 8;
    this.#maxBuffered = this.#concurrency + (options.prefetch ?? this.#concurrency);
    this.#ordered = options.ordered ?? false;
    this.#deadLetterTopic = options.deadLetterTopic ?? `${topic}-dlq`;
    const chain = [...(options.middleware ?? [])];
    const handler = options.handler;
    this.#handler = (delivery) => {
      const run = (i: number): Promise<void> => {
        const mw = chain[i];
        return mw ? mw(delivery, () => run(i + 1)) : Promise.resolve(handler(delivery));
      };
      return run(0);
    };
  }

  /** @internal validates options and starts the driver subscription. */
  static async start<T>(topic: string, options: SubscribeOptions<T>, deps: SubscriptionDeps): Promise<SubscriptionRuntime<T>> {
    validate(topic, options, deps.driver);
    const runtime = new SubscriptionRuntime(topic, options, deps);
    const spec: SubscriptionSpec = {
      topic,
      group: options.group,
      maxInFlight: runtime.#maxBuffered,
      ordered: runtime.#ordered,
      maxAttempts: runtime.#retry.maxAttempts,
      deadLetterTopic: runtime.#deadLetterTopic,
      options: options.options ?? {},
    };
    runtime.#driverSub = await deps.driver.subscribe(spec, {
      deliver: (d) => runtime.#accept(d),
      error: (e) => deps.logger.error({ err: e, topic, group: options.group }, 'subscription error'),
    });
    return runtime;
  }

  get inFlight(): number {
    return this.#running.size;
  }

  #accept(driverDelivery: DriverDelivery): void {
    const lane = this.#ordered ? (driverDelivery.orderingKey ?? driverDelivery.envelope.key) : undefined;
    const entry: Entry = { driverDelivery, lane, settled: false, abandoned: false, abort: new AbortController() };
    if (this.#closing) {
      // Intake has stopped: leave it unsettled; the driver gives it back on close.
      return;
    }
    this.#pending.push(entry);
    this.#pump();
  }

  #pump(): void {
    if (this.#closing) return;
    for (let i = 0; i < this.#pending.length && this.#running.size < this.#concurrency; ) {
      const entry = this.#pending[i]!;
      if (entry.lane !== undefined && this.#busyLanes.has(entry.lane)) {
        i += 1;
        continue;
      }
      this.#pending.splice(i, 1);
      this.#running.add(entry);
      if (entry.lane !== undefined) this.#busyLanes.add(entry.lane);
      void this.#process(entry).finally(() => {
        this.#running.delete(entry);
        if (entry.lane !== undefined) this.#busyLanes.delete(entry.lane);
        if (this.#running.size === 0) this.#idleWaiters.splice(0).forEach((w) => w());
        this.#pump();
      });
    }
    this.#backpressure();
  }

  #backpressure(): void {
    const buffered = this.#pending.length + this.#running.size;
    if (!this.#paused && buffered >= this.#maxBuffered) {
      this.#paused = true;
      this.#driverSub?.pause();
    } else if (this.#paused && buffered < this.#maxBuffered) {
      this.#paused = false;
      this.#driverSub?.resume();
    }
  }

  async #process(entry: Entry): Promise<void> {
    const { envelope, attempt } = entry.driverDelivery;
    const { telemetry, logger } = this.#deps;
    const attrs = telemetry.attributes(this.topic, this.group);
    let payload: T;
    try {
      payload = this.#codec.decode(envelope.body);
    } catch (err) {
      logger.warn({ topic: this.topic, group: this.group, id: envelope.id }, 'payload cannot be decoded; dead-lettering');
      await this.#settleSafely(entry, () => this.#deadLetter(entry, 'decode-failed', err));
      return;
    }
    const delivery = this.#makeDelivery(entry, payload);
    const parent = telemetry.extract(envelope.headers);
    const span = telemetry.startProcess(this.topic, this.group, parent);
    const started = performance.now();
    let failure: unknown;
    try {
      await otelContext.with(parent, () => this.#handler(delivery));
    } catch (err) {
      failure = err ?? new Error('handler threw a nullish value');
    }
    telemetry.handlerDuration.record(performance.now() - started, attrs);
    Telemetry.endSpan(span, failure);
    if (entry.settled || entry.abandoned) {
      if (failure !== undefined) logger.warn({ err: failure, id: envelope.id }, 'handler failed after settling its delivery');
      return;
    }
    if (failure === undefined) {
      await this.#settleSafely(entry, () => this.#ack(entry));
    } else if (attempt >= this.#retry.maxAttempts) {
      await this.#settleSafely(entry, () => this.#deadLetter(entry, 'handler-failed', failure));
    } else {
      const delayMs = this.#clampDelay(backoffDelay(this.#retry, attempt));
      logger.debug({ id: envelope.id, attempt, delayMs }, 'handler failed; retrying');
      await this.#settleSafely(entry, () => this.#nack(entry, delayMs));
    }
  }

  #clampDelay(delayMs: number): number {
    const { delay } = this.#deps.driver.capabilities;
    return delay.kind === 'none' ? 0 : Math.min(delayMs, delay.maxMs);
  }

  #makeDelivery(entry: Entry, payload: T): Delivery<T> {
    const { envelope, attempt, meta } = entry.driverDelivery;
    const self = this;
    return {
      id: envelope.id,
      topic: this.topic,
      group: this.group,
      key: envelope.key,
      headers: envelope.headers,
      payload,
      body: envelope.body,
      timestamp: envelope.timestamp,
      attempt,
      meta: meta ?? {},
      signal: entry.abort.signal,
      get settled() {
        return entry.settled;
      },
      ack: () => self.#settle(entry, () => self.#ack(entry)),
      nack: (options?: NackOptions) => {
        const delayMs = options?.delayMs ?? 0;
        if (!Number.isFinite(delayMs) || delayMs < 0) {
          return Promise.reject(new MqError('INVALID_MESSAGE', 'nack delayMs must be a finite number >= 0'));
        }
        const { delay } = self.#deps.driver.capabilities;
        if (delayMs > 0 && (delay.kind === 'none' || delayMs > delay.maxMs)) {
          return Promise.reject(new MqError('UNSUPPORTED', `${self.#deps.driver.name} cannot delay a redelivery by ${delayMs} ms`));
        }
        return self.#settle(entry, () => self.#nack(entry, delayMs));
      },
      deadLetter: (reason: string) => self.#settle(entry, () => self.#deadLetter(entry, reason)),
    };
  }

  /** Settles once; a second settle, or one after the delivery was abandoned, is refused. */
  async #settle(entry: Entry, action: () => Promise<void>): Promise<void> {
    if (entry.abandoned) throw new MqError('CLOSED', 'delivery was abandoned when its subscription closed; it will be redelivered');
    if (entry.settled) throw new MqError('INVALID_MESSAGE', 'delivery was already settled');
    entry.settled = true;
    await action();
  }

  /** Runtime-initiated settles: failures are logged, since the broker redelivers anyway. */
  async #settleSafely(entry: Entry, action: () => Promise<void>): Promise<void> {
    try {
      await this.#settle(entry, action);
    } catch (err) {
      this.#deps.logger.warn({ err, id: entry.driverDelivery.envelope.id, topic: this.topic }, 'settling a delivery failed; the broker will redeliver it');
    }
  }

  async #ack(entry: Entry): Promise<void> {
    await entry.driverDelivery.ack();
    this.#deps.telemetry.acked.add(1, this.#deps.telemetry.attributes(this.topic, this.group));
  }

  async #nack(entry: Entry, delayMs: number): Promise<void> {
    await entry.driverDelivery.nack(delayMs);
    this.#deps.telemetry.retried.add(1, this.#deps.telemetry.attributes(this.topic, this.group));
  }

  async #deadLetter(entry: Entry, reason: string, error?: unknown): Promise<void> {
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
      const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      headers[HEADERS.deadLetterError] = text.slice(0, MAX_ERROR_HEADER);
    }
    const dead: Envelope = { ...envelope, topic: this.#deadLetterTopic, headers, delayMs: undefined };
    if (driverDelivery.deadLetter) {
      await driverDelivery.deadLetter(dead);
    } else {
      const [outcome] = await this.#deps.sender.send([dead], false);
      if (!outcome?.ok) {
        throw outcome?.error ?? new MqError('INTERNAL', 'dead-letter publish returned no outcome');
      }
      await driverDelivery.ack();
    }
    this.#deps.telemetry.deadLettered.add(1, this.#deps.telemetry.attributes(this.topic, this.group));
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= this.#close(options.timeoutMs ?? 10_000);
    return this.#closing;
  }

  async #close(timeoutMs: number): Promise<void> {
    this.#driverSub?.pause();
    this.#pending.length = 0; // never started: the driver gives them back on close
    if (this.#running.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      const expired = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const result = await Promise.race([idle, expired]);
      clearTimeout(timer);
      if (result === 'timeout') {
        for (const entry of this.#running) {
          entry.abandoned = true;
          entry.abort.abort(new MqError('CLOSED', 'subscription closed before the handler finished'));
        }
        this.#deps.logger.warn({ topic: this.topic, group: this.group, abandoned: this.#running.size }, 'close deadline passed; abandoning running handlers');
      }
    }
    await this.#driverSub?.close();
  }
}

function validate<T>(topic: string, options: SubscribeOptions<T>, driver: Driver): void {
  if (typeof topic !== 'string' || topic.length === 0) throw new MqError('INVALID_MESSAGE', 'topic must be a non-empty string');
  if (!driver.capabilities.topicPattern.test(topic)) {
    throw new MqError('INVALID_MESSAGE', `topic "${topic}" is not a valid ${driver.name} topic name`);
  }
  if (typeof options.group !== 'string' || options.group.length === 0) throw new MqError('CONFIG', 'subscribe: group must be a non-empty string');
  if (typeof options.handler !== 'function') throw new MqError('CONFIG', 'subscribe: handler must be a function');
  const c = options.concurrency ?? 8;
  if (!Number.isInteger(c) || c < 1) throw new MqError('CONFIG', 'subscribe: concurrency must be an integer >= 1');
  const attempts = options.retry?.maxAttempts ?? DEFAULT_RETRY.maxAttempts;
  if (!Number.isInteger(attempts) || attempts < 1) throw new MqError('CONFIG', 'subscribe: retry.maxAttempts must be an integer >= 1');
  if (options.ordered && driver.capabilities.ordering !== 'key') {
    throw new MqError('UNSUPPORTED', `${driver.name} does not keep per-key order; subscribe without ordered: true`);
  }
  const dlq = options.deadLetterTopic ?? `${topic}-dlq`;
  if (!driver.capabilities.topicPattern.test(dlq)) throw new MqError('CONFIG', `dead-letter topic "${dlq}" is not a valid ${driver.name} topic name`);
}
