/**
 * The RabbitMQ driver: reliable sends over a confirm channel, one quorum queue per consumer
 * group, TTL delay queues, and a connection that heals itself.
 */
import {
  MqError,
  type Capabilities,
  type DeliverySink,
  type Driver,
  type DriverContext,
  type DriverSubscription,
  type Envelope,
  type Logger,
  type SendOutcome,
  type SubscriptionSpec,
} from '@mqkit/core/driver';
import type { ChannelModel } from 'amqplib';
import { z } from 'zod';
import { ConnectionManager } from './connection.ts';
import { classifyError } from './errors.ts';
import { delayBucket, fitsName, groupQueueName, publishDelayQueueName, retryDelayQueueName, TOPIC_PATTERN } from './names.ts';
import { DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_MESSAGE_BYTES, type ConnectionSettings } from './options.ts';
import { Publisher, type Outgoing } from './publisher.ts';
import { RabbitSubscription } from './subscription.ts';
import { Topology } from './topology.ts';
import { toPublishOptions } from './wire.ts';

/** Longest delay: per-message TTL is an unsigned 32-bit ms value; a day keeps queues short-lived. */
export const MAX_DELAY_MS = 24 * 3600_000;

/**
 * What the adapter claims, for the given options (only the size limits depend on them).
 * Delay is emulated with TTL queues: exact per-message TTL, grouped in buckets of at most 10 % of
 * the delay, so under light load a delayed message arrives within ~100 ms of its time.
 */
export function rabbitmqCapabilities(options: { maxMessageBytes?: number; maxBatchSize?: number } = {}): Capabilities {
  return {
    delay: { kind: 'emulated', maxMs: MAX_DELAY_MS, precisionMs: 100 },
    ordering: 'key',
    transactions: false,
    maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    maxBatchSize: options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
    deliveryCount: 'native',
    topicPattern: TOPIC_PATTERN,
    maxHeaders: Number.POSITIVE_INFINITY,
  };
}

const subscribeOptionsSchema = z
  .object({
    queue: z.string().min(1).max(255).optional(),
  })
  .strict();

/** The escape hatch: `client.native` (or the driver's `native`) for what mqkit does not cover. */
export interface RabbitmqNative {
  /** The current amqplib connection, or undefined while reconnecting. Do not close it. */
  readonly connection: ChannelModel | undefined;
  /**
   * Declares a consumer group's queue (bound to its topic) before any consumer runs, so that
   * publishes are routable from the start. Idempotent.
   */
  declareGroup(topic: string, group: string, options?: { ordered?: boolean; deadLetterTopic?: string }): Promise<string>;
}

export class RabbitmqDriver implements Driver {
  readonly name = 'rabbitmq';
  readonly capabilities: Capabilities;
  readonly native: RabbitmqNative;
  readonly #settings: ConnectionSettings;
  readonly #logger: Logger;
  readonly #manager: ConnectionManager;
  readonly #publisher: Publisher;
  readonly #topology: Topology;
  readonly #subscriptions = new Set<RabbitSubscription>();
  #closed = false;

  private constructor(settings: ConnectionSettings, context: DriverContext) {
    this.#settings = settings;
    this.#logger = context.logger;
    this.#manager = new ConnectionManager(settings, context.logger);
    this.#publisher = new Publisher(this.#manager, context.logger);
    this.#topology = new Topology(this.#manager, settings.options);
    this.capabilities = rabbitmqCapabilities(settings.options);
    const manager = this.#manager;
    const topology = this.#topology;
    this.native = {
      get connection() {
        return manager.link?.model;
      },
      declareGroup: async (topic, group, options = {}) => {
        if (!TOPIC_PATTERN.test(topic)) throw new MqError('INVALID_MESSAGE', `topic "${topic}" is not a valid rabbitmq topic name`);
        return topology.group({
          topic,
          group,
          deadLetterTopic: options.deadLetterTopic ?? `${topic}-dlq`,
          singleActiveConsumer: options.ordered ?? false,
        });
      },
    };
  }

  /** Connects (once; a failure here is thrown, later losses are recovered). */
  static async connect(settings: ConnectionSettings, context: DriverContext): Promise<RabbitmqDriver> {
    const driver = new RabbitmqDriver(settings, context);
    await driver.#manager.start();
    await driver.#manager.attach(driver.#publisher);
    await driver.#manager.attach(driver.#topology);
    context.logger.debug({ url: settings.safeUrl }, 'rabbitmq connected');
    return driver;
  }

  async send(envelopes: readonly Envelope[]): Promise<SendOutcome[]> {
    if (this.#closed) throw new MqError('CLOSED', 'rabbitmq driver is closed');
    const declared = await this.#declareFor(envelopes);
    const { confirmTimeoutMs } = this.#settings.options;
    const outcomes: SendOutcome[] = new Array(envelopes.length);
    // The common case, nothing failed to declare: every envelope goes, at its own index.
    let valid: readonly Envelope[] = envelopes;
    let index: number[] | undefined;
    if (declared.size > 0) {
      const kept: Envelope[] = [];
      index = [];
      for (let i = 0; i < envelopes.length; i += 1) {
        const failure = declared.get(declareKey(envelopes[i]!));
        if (failure) {
          outcomes[i] = { ok: false, error: failure };
        } else {
          kept.push(envelopes[i]!);
          index.push(i);
        }
      }
      valid = kept;
    }
    // AMQP properties are built per message as it is published (see publishEach).
    const results = await this.#publisher.publishEach(valid, toOutgoing, confirmTimeoutMs);
    for (let j = 0; j < results.length; j += 1) outcomes[index ? index[j]! : j] = results[j] ? { ok: false, error: results[j]! } : OK;
    return outcomes;
  }

  /** Declares the exchanges / delay queues a batch needs; returns failures by {@link declareKey}. */
  async #declareFor(envelopes: readonly Envelope[]): Promise<Map<string, MqError>> {
    const failures = new Map<string, MqError>();
    if (!this.#topology.enabled) return failures;
    if (envelopes.every((e) => !e.delayMs && this.#topology.isExchangeDeclared(e.topic))) return failures;
    const wanted = new Map<string, () => Promise<unknown>>();
    for (const envelope of envelopes) {
      const k = declareKey(envelope);
      if (wanted.has(k)) continue;
      const { topic, delayMs } = envelope;
      wanted.set(k, delayMs ? () => this.#topology.publishDelay(topic, delayBucket(delayMs)) : () => this.#topology.exchange(topic));
    }
    await Promise.all(
      [...wanted].map(async ([k, declare]) => {
        try {
          await declare();
        } catch (err) {
          failures.set(k, classifyError(err, 'declaring the topic exchange'));
        }
      }),
    );
    return failures;
  }

  async subscribe(spec: SubscriptionSpec, sink: DeliverySink): Promise<DriverSubscription> {
    if (this.#closed) throw new MqError('CLOSED', 'rabbitmq driver is closed');
    const parsed = subscribeOptionsSchema.safeParse(spec.options);
    if (!parsed.success) {
      throw new MqError('CONFIG', `invalid rabbitmq subscription options: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ')}`);
    }
    const queue = parsed.data.queue ?? groupQueueName(spec.topic, spec.group);
    if (!fitsName(retryDelayQueueName(queue, 99_000_000))) {
      throw new MqError('CONFIG', `group queue name "${queue}" is too long for RabbitMQ (255 bytes including the delay-queue suffix)`);
    }
    if (!TOPIC_PATTERN.test(spec.deadLetterTopic)) {
      throw new MqError('CONFIG', `dead-letter topic "${spec.deadLetterTopic}" is not a valid rabbitmq topic name`);
    }
    if (this.#settings.options.declare && spec.maxAttempts > this.#settings.options.deliveryLimit) {
      this.#logger.warn(
        { topic: spec.topic, group: spec.group, maxAttempts: spec.maxAttempts, deliveryLimit: this.#settings.options.deliveryLimit },
        'retry.maxAttempts exceeds the queue delivery limit: immediate redeliveries may be dead-lettered by RabbitMQ before mqkit does (raise the deliveryLimit option)',
      );
    }
    const subscription = new RabbitSubscription(
      { manager: this.#manager, topology: this.#topology, publisher: this.#publisher, logger: this.#logger },
      spec,
      sink,
      parsed.data,
    );
    await subscription.start();
    this.#subscriptions.add(subscription);
    return {
      pause: () => subscription.pause(),
      resume: () => subscription.resume(),
      close: async () => {
        this.#subscriptions.delete(subscription);
        await subscription.close();
      },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#subscriptions].map((s) => s.close()));
    this.#subscriptions.clear();
    await this.#publisher.settled(5_000);
    await this.#manager.close();
    this.#logger.debug({ url: this.#settings.safeUrl }, 'rabbitmq connection closed');
  }
}

/** The AMQP message for `envelope`: to its topic's exchange, or to a delay queue. */
function toOutgoing(envelope: Envelope): Outgoing {
  const options = toPublishOptions(envelope);
  if (envelope.delayMs !== undefined && envelope.delayMs > 0) {
    options.expiration = String(Math.ceil(envelope.delayMs));
    return { exchange: '', routingKey: publishDelayQueueName(envelope.topic, delayBucket(envelope.delayMs)), content: toBuffer(envelope.body), options };
  }
  const routingKey = envelope.key !== undefined && fitsName(envelope.key) ? envelope.key : '';
  return { exchange: envelope.topic, routingKey, content: toBuffer(envelope.body), options };
}

/** Shared: a confirmed send's outcome carries nothing per message. */
const OK: SendOutcome = Object.freeze({ ok: true });

function declareKey(envelope: Envelope): string {
  return envelope.delayMs ? `${envelope.topic}\u0000${delayBucket(envelope.delayMs)}` : envelope.topic;
}

function toBuffer(body: Uint8Array): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}
