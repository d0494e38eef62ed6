import type { Capabilities, Driver } from './driver/driver.ts';
import type { MissingTopology } from './driver/topology.ts';
import { MqError } from './errors.ts';
import type { Logger } from './logger.ts';
import type { Envelope } from './message.ts';
import {
  buildEnvelope,
  envelopeOf,
  ReliableSender,
  type OutgoingMessage,
  type PublishOptions,
  type PublishOutcome,
  type PublishPolicy,
  type PublishReceipt,
} from './publish.ts';
import { SubscriptionRuntime, type CloseOptions, type SubscribeOptions, type Subscription } from './subscription.ts';
import { withDeadline } from './deadline.ts';
import { healthOptions, isoTime, verdict, type ClientHealth, type HealthOptions, type OutboxRelayHealth } from './health.ts';
import { Telemetry, untraced } from './telemetry.ts';
import { requireTopology, toTopologySpec, verifyTopology, withTopology, type TopicDeclaration, type TopologyMode } from './topology.ts';

/** A native transaction scope (see {@link Client.transaction}). */
export interface Transaction {
  /** Stage a message; it becomes visible when the transaction commits. */
  publish<T>(topic: string, payload: T, options?: PublishOptions<T>): Promise<void>;
}

/**
 * A connection to one broker through its adapter: publish, subscribe, close. Made by
 * {@link connect}.
 */
export class Client {
  readonly #driver: Driver;
  readonly #sender: ReliableSender;
  readonly #telemetry: Telemetry;
  readonly #logger: Logger;
  /** The subscriptions handed out, with their runtimes (for {@link Client.health}). */
  readonly #subscriptions = new Map<Subscription, SubscriptionRuntime<unknown>>();
  /** Outbox relays running with this client: their health in {@link Client.health}. */
  readonly #relays = new Set<{ health(): OutboxRelayHealth & { readonly failingSinceMs?: number | undefined } }>();
  readonly #publishTimeoutMs: number;
  readonly #topology: TopologyMode;
  /** The driver subscriptions run on: with the topology step of {@link Client.topology} in `receiver()`. */
  readonly #subscribeDriver: Driver;
  /**
   * `create` mode on an adapter whose sends do not create topics: each topic is declared before
   * this client's first publish to it (true once done, or once it failed: the send then reports).
   */
  readonly #declareOnPublish: boolean;
  readonly #publishTopics = new Map<string, Promise<void> | true>();
  #closing: Promise<void> | undefined;

  /** @internal use {@link connect}. */
  constructor(driver: Driver, telemetry: Telemetry, logger: Logger, publishPolicy: PublishPolicy, topology: TopologyMode = 'none') {
    this.#driver = driver;
    this.#topology = topology;
    this.#subscribeDriver = withTopology(driver, topology);
    this.#declareOnPublish = topology === 'create' && driver.topology !== undefined && driver.topology.capabilities.createsOnPublish !== true;
    this.#telemetry = telemetry;
    this.#logger = logger;
    this.#sender = new ReliableSender(driver, telemetry, publishPolicy);
    this.#publishTimeoutMs = publishPolicy.timeoutMs;
  }

  /** How long a publish may take before it rejects (`publish.timeoutMs` of {@link connect}). */
  get publishTimeoutMs(): number {
    return this.#publishTimeoutMs;
  }

  /** What `subscribe()` does about missing topics and groups (the `topology` option of {@link connect}). */
  get topology(): TopologyMode {
    return this.#topology;
  }

  /** The adapter's name (`memory`, `kafka`, …). */
  get adapter(): string {
    return this.#driver.name;
  }

  /** What the adapter can do. */
  get capabilities(): Capabilities {
    return this.#driver.capabilities;
  }

  /** The broker client underneath, for what mqkit does not cover. */
  get native(): unknown {
    return this.#driver.native;
  }

  #assertOpen(): void {
    if (this.#closing) throw new MqError('CLOSED', 'client is closed');
  }

  /**
   * Publishes one message and resolves once the broker durably accepted it. Retryable failures
   * are retried until the publish deadline (`publish.timeoutMs` from now); then it rejects with an
   * {@link MqError}: at the latest at the deadline, with TIMEOUT (retryable; the outcome is then
   * unknown, retry with the same `id`) even if the broker never answers. While
   * `publish.maxPending` / `maxPendingBytes` are reached it first waits for room, in publish order.
   * Unknown or ill-typed options reject with INVALID_MESSAGE naming the field.
   */
  publish<T>(topic: string, payload: T, options: PublishOptions<T> = {}): Promise<PublishReceipt> {
    // Not an async function: a suspended one keeps a frame alive per pending publish, and a burst
    // of them is paid for in garbage collection. Invalid input still rejects, never throws.
    let envelope: Envelope;
    try {
      this.#assertOpen();
      envelope = envelopeOf(this.#driver, topic, payload, options);
    } catch (err) {
      return Promise.reject(err);
    }
    const declaring = this.#declareOnPublish ? this.#topicReady(envelope) : undefined;
    return declaring ? declaring.then(() => this.#sender.sendOwned(envelope)) : this.#sender.sendOwned(envelope);
  }

  /**
   * Undefined when `envelope.topic` may be sent to at once, else the declaration to wait for. The
   * sends of a topic waiting for it are chained on the one promise, so they keep publish order.
   * A failed declaration is logged and not repeated: the send's own error says what is wrong.
   */
  #topicReady(envelope: Envelope): Promise<void> | undefined {
    const state = this.#publishTopics.get(envelope.topic);
    if (state === true) return undefined;
    if (state) return state;
    const { topic } = envelope;
    const declared: Promise<void> = withDeadline(
      requireTopology(this.#driver).declare({ topic, ordered: false, delayed: (envelope.delayMs ?? 0) > 0, groups: [], deadLetterTopic: undefined }),
      this.#publishTimeoutMs,
      `declaring topic "${topic}" before its first publish`,
    )
      .catch((err: unknown) => this.#logger.warn({ err, topic }, 'declaring the topic before publishing failed; sending anyway'))
      .then(() => this.#settleTopic(topic, declared));
    this.#publishTopics.set(topic, declared);
    return declared;
  }

  /** Marks `topic` ready unless a later wait (a batch's) took its place. */
  #settleTopic(topic: string, wait: Promise<void>): void {
    if (this.#publishTopics.get(topic) === wait) this.#publishTopics.set(topic, true);
  }

  /** The declarations `envelopes` wait for (create mode), or undefined when none. */
  #topicsReady(envelopes: readonly Envelope[]): Promise<unknown> | undefined {
    if (!this.#declareOnPublish) return undefined;
    const waits = new Set<Promise<void>>();
    for (const envelope of envelopes) {
      const wait = this.#topicReady(envelope);
      if (wait) waits.add(wait);
    }
    if (waits.size === 0) return undefined;
    // Every topic of the batch waits for all of it: a later publish to one of them must not
    // overtake the batch's messages while another of its topics is still being declared.
    const topics = new Set(envelopes.map((e) => e.topic));
    const all: Promise<void> = Promise.all(waits).then(() => {
      for (const topic of topics) this.#settleTopic(topic, all);
    });
    for (const topic of topics) this.#publishTopics.set(topic, all);
    return all;
  }

  /**
   * Publishes many messages; never rejects for one message's failure: each gets its own outcome,
   * in input order. An invalid message fails alone, the others are still sent. Each message has
   * the same deadline and room rules as {@link Client.publish}; a batch larger than
   * `publish.maxPending` goes in slices as room frees.
   */
  async publishBatch(messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]> {
    this.#assertOpen();
    const outcomes = new Array<PublishOutcome | undefined>(messages.length);
    const valid: Envelope[] = [];
    const where: number[] = [];
    messages.forEach((message, i) => {
      try {
        valid.push(buildEnvelope(this.#driver, message));
        where.push(i);
      } catch (err) {
        const error = MqError.is(err) ? err : new MqError('INVALID_MESSAGE', String(err), { cause: err });
        outcomes[i] = { ok: false, id: message?.id ?? '', topic: message?.topic ?? '', error };
      }
    });
    // Only when declaring: an await here otherwise would let a later publish() overtake the batch.
    const declaring = this.#topicsReady(valid);
    if (declaring) await declaring;
    // One send span for the batch, linked to a create span per message (undefined when nothing
    // records: each message then gets its own send span, as with publish()).
    const span = this.#telemetry.startBatch(valid, true);
    const sent = await this.#sender.send(valid, span === undefined, true);
    if (span) Telemetry.endBatch(span, sent);
    sent.forEach((outcome, j) => {
      outcomes[where[j]!] = outcome;
    });
    return outcomes as PublishOutcome[];
  }

  /**
   * Sends envelopes already built (e.g. by an outbox relay) with reliable send. Reserved `x-mqkit-`
   * headers are allowed here.
   */
  sendEnvelopes(envelopes: readonly Envelope[]): Promise<PublishOutcome[]> {
    this.#assertOpen();
    const declaring = this.#topicsReady(envelopes);
    return declaring ? declaring.then(() => this.#sendPrepared(envelopes)) : this.#sendPrepared(envelopes);
  }

  /** Envelopes with their creation context (from {@link Client.prepare}) under one send span linked to them. */
  #sendPrepared(envelopes: readonly Envelope[]): Promise<PublishOutcome[]> {
    const span = this.#telemetry.startBatch(envelopes, false);
    const sent = this.#sender.send(envelopes, false);
    if (!span) return sent;
    return sent.then((outcomes) => {
      Telemetry.endBatch(span, outcomes);
      return outcomes;
    });
  }

  /**
   * Validates and encodes a message without sending it, with the current trace context in its
   * headers: what an outbox stores and a transaction stages.
   */
  prepare<T>(topic: string, payload: T, options: PublishOptions<T> = {}): Envelope {
    const envelope = envelopeOf(this.#driver, topic, payload, options);
    const headers = { ...envelope.headers };
    this.#telemetry.createOne(topic, envelope.id, headers);
    return { ...envelope, headers };
  }

  /**
   * Creates what is missing of a topic, its consumer groups and its dead-letter topic, the same
   * call on every broker (whatever the `topology` mode); existing ones are left as they are. A
   * declared group keeps every message published from now on, before its first subscriber too.
   *
   * ```ts
   * await mq.declare({ topic: 'orders', groups: ['billing', 'shipping'], partitions: 6 });
   * ```
   *
   * Rejects with CONFIG for bad options (naming the field) or when the endpoint cannot create
   * them (naming the option that enables it), UNSUPPORTED when the adapter has no topology step.
   */
  async declare(declaration: TopicDeclaration): Promise<void> {
    this.#assertOpen();
    const spec = toTopologySpec(this.#driver, declaration);
    await requireTopology(this.#driver).declare(spec);
  }

  /**
   * Checks that a topic, its groups and its dead-letter topic exist, without creating anything.
   * Rejects with NOT_FOUND naming each missing one and the {@link Client.declare} call that
   * creates them (CONFIG when one exists but does not fit, e.g. a non-FIFO topic declared ordered).
   */
  async verify(declaration: TopicDeclaration): Promise<void> {
    this.#assertOpen();
    await verifyTopology(this.#driver, toTopologySpec(this.#driver, declaration, 'verify'));
  }

  /**
   * What {@link Client.declare} would create for this declaration, and what exists but does not fit
   * it (`problem` set), without changing anything: `[]` when everything is there. The list
   * {@link Client.verify} turns into its NOT_FOUND/CONFIG error (e.g. for `mqkit topology plan`).
   */
  async plan(declaration: TopicDeclaration): Promise<readonly MissingTopology[]> {
    this.#assertOpen();
    return requireTopology(this.#driver).verify(toTopologySpec(this.#driver, declaration, 'plan'));
  }

  /**
   * Starts consuming `topic` as `options.group`. With `topology: 'create'` the topic, the group and
   * the dead-letter topic are declared first when missing; with `'verify'` a missing one rejects
   * with NOT_FOUND naming it.
   */
  async subscribe<T = unknown>(topic: string, options: SubscribeOptions<T>): Promise<Subscription> {
    this.#assertOpen();
    const runtime = await SubscriptionRuntime.start(topic, options, {
      driver: this.#subscribeDriver,
      sender: this.#sender,
      telemetry: this.#telemetry,
      logger: this.#logger,
    });
    const tracked: Subscription = {
      topic: runtime.topic,
      group: runtime.group,
      get inFlight() {
        return runtime.inFlight;
      },
      close: async (opts?: CloseOptions) => {
        await runtime.close(opts);
        this.#subscriptions.delete(tracked);
      },
    };
    this.#subscriptions.set(tracked, runtime as SubscriptionRuntime<unknown>);
    return tracked;
  }

  /**
   * Runs `fn` in a native broker transaction: messages published through `tx` become visible
   * together when `fn` resolves, and never when it throws. Rejects with UNSUPPORTED where the
   * adapter has no native transactions (use the outbox instead).
   */
  async transaction<R>(fn: (tx: Transaction) => Promise<R>): Promise<R> {
    this.#assertOpen();
    if (!this.#driver.capabilities.transactions || !this.#driver.beginTransaction) {
      throw new MqError('UNSUPPORTED', `${this.#driver.name} has no native transactions; use the transactional outbox`);
    }
    const driver = this.#driver;
    const tx = await untraced(() => driver.beginTransaction!(), undefined);
    let result: R;
    try {
      result = await fn({
        publish: async (topic, payload, options) => {
          const envelope = this.prepare(topic, payload, options);
          await untraced(() => tx.send([envelope]), undefined);
        },
      });
    } catch (err) {
      await tx.abort().catch((abortErr: unknown) => this.#logger.warn({ err: abortErr }, 'transaction abort failed'));
      throw err;
    }
    await untraced(() => tx.commit(), undefined);
    return result;
  }

  /**
   * Readiness and liveness details for probes, from what the client already knows (no broker
   * round trip, so it is cheap enough for every probe):
   *
   * - `ready`: open, and nothing failing: the publisher (CONNECTION, TIMEOUT, NOT_CONFIRMED or
   *   AUTH failures with no confirm since), a subscription's receive calls, an outbox relay's rounds. A backpressured
   *   (`paused`) subscription is ready.
   * - `live`: open, and nothing failing for longer than `maxFailingMs` (default 60 s).
   *
   * ```ts
   * app.get('/readyz', (_req, res) => { const h = mq.health(); res.status(h.ready ? 200 : 503).json(h); });
   * app.get('/livez', (_req, res) => res.sendStatus(mq.health().live ? 200 : 503));
   * ```
   *
   * Throws CONFIG for a bad option.
   */
  health(options?: HealthOptions): ClientHealth {
    const { maxFailingMs } = healthOptions(options);
    const closed = this.#closing !== undefined;
    const send = this.#telemetry.sendHealth;
    const subscriptions = [...this.#subscriptions.values()].map((r) => r.health());
    const relays = [...this.#relays].map((r) => r.health());
    const failing = [send.failingSince, ...subscriptions.map((s) => s.failingSinceMs), ...relays.map((r) => r.failingSinceMs)];
    return {
      ...verdict(closed, failing, maxFailingMs),
      adapter: this.#driver.name,
      closed,
      publisher: {
        state: send.failingSince === undefined ? 'ok' : 'failing',
        pending: this.#sender.pending,
        failingSince: isoTime(send.failingSince),
        lastError: send.lastError,
      },
      subscriptions: subscriptions.map(({ failingSinceMs: _, ...s }) => s),
      outboxRelays: relays.map(({ failingSinceMs: _, ...r }) => r),
    };
  }

  /** @internal an outbox relay reports its health here while it runs; returns the detach. */
  attachRelay(relay: { health(): OutboxRelayHealth & { readonly failingSinceMs?: number | undefined } }): () => void {
    this.#relays.add(relay);
    return () => this.#relays.delete(relay);
  }

  /**
   * Graceful shutdown: stops intake, waits for running handlers (up to `timeoutMs`, then abandons
   * them so the broker redelivers), waits for pending publishes and their confirms, then
   * disconnects. Safe to call more than once.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= this.#close(options);
    return this.#closing;
  }

  async #close(options: CloseOptions): Promise<void> {
    await Promise.all([...this.#subscriptions.keys()].map((s) => s.close(options)));
    await this.#sender.drain();
    this.#sender.close();
    await this.#driver.close();
  }
}
