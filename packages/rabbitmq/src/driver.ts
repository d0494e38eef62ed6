/**
 * The RabbitMQ driver: reliable sends over a confirm channel, one quorum queue per consumer
 * group, TTL delay queues, and a connection that heals itself.
 */
import {
  MqError,
  type Capabilities,
  type Driver,
  type DriverContext,
  type DriverTopology,
  type MissingTopology,
  type TopologySpec,
  type Envelope,
  type Logger,
  type SendOutcome,
  type SubscriptionSpec,
} from '@mqkit/core/driver';
import type { ChannelModel } from 'amqplib';
import { ConnectionManager } from './connection.ts';
import { classifyError } from './errors.ts';
import { fitsName, groupQueueName, retryDelayQueueName, TOPIC_PATTERN } from './names.ts';
import { DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_MESSAGE_BYTES, parseSubscribeOptions, prefetchCount, type ConnectionSettings } from './options.ts';
import { Publisher, type Outgoing } from './publisher.ts';
import { RabbitReceiver } from './receiver.ts';
import { Topology } from './topology.ts';
import { MAX_DELAY_MS, toPublishOptions } from './wire.ts';

export { MAX_DELAY_MS };

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

/** The escape hatch: `client.native` (or the driver's `native`) for what mqkit does not cover. */
export interface RabbitmqNative {
  /** The current amqplib connection, or undefined while reconnecting. Do not close it. */
  readonly connection: ChannelModel | undefined;
  /**
   * Declares a consumer group's queue (bound to its topic) before any consumer runs, so that
   * publishes are routable from the start. Idempotent. With `maxAttempts`, fails CONFIG when an
   * existing queue's delivery limit is below it (as `subscribe()` would).
   */
  declareGroup(topic: string, group: string, options?: { ordered?: boolean; deadLetterTopic?: string; maxAttempts?: number }): Promise<string>;
}

export class RabbitmqDriver implements Driver {
  readonly name = 'rabbitmq';
  readonly capabilities: Capabilities;
  readonly native: RabbitmqNative;
  /**
   * The topic's exchange, one quorum queue per group bound to it (single active consumer when
   * ordered) dead-lettering into the dead-letter topic's exchange, and that exchange with its
   * keep-all queue: the same declarations `subscribe()` makes (topology.ts).
   */
  readonly topology: DriverTopology;
  readonly #settings: ConnectionSettings;
  readonly #logger: Logger;
  readonly #manager: ConnectionManager;
  readonly #publisher: Publisher;
  readonly #topology: Topology;
  readonly #receivers = new Set<RabbitReceiver>();
  #closed = false;

  private constructor(settings: ConnectionSettings, context: DriverContext) {
    this.#settings = settings;
    this.#logger = context.logger;
    this.#manager = new ConnectionManager(settings, context.logger);
    this.#publisher = new Publisher(this.#manager, context.logger);
    this.#topology = new Topology(this.#manager, settings.options);
    this.capabilities = rabbitmqCapabilities(settings.options);
    this.topology = {
      capabilities: { partitions: false, retainsForDeclaredGroups: true, createsOnPublish: settings.options.declare },
      declare: (spec) => this.#declareTopology(spec),
      verify: (spec) => this.#verifyTopology(spec),
    };
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
          maxAttempts: options.maxAttempts,
        });
      },
    };
  }

  #declareTopology(spec: TopologySpec): Promise<void> {
    return this.#topologyCall(spec, async () => {
      await this.#topology.exchange(spec.topic);
      if (spec.deadLetterTopic !== undefined) await this.#topology.deadLetter(spec.deadLetterTopic);
      for (const group of spec.groups) {
        await this.#topology.group({
          topic: spec.topic,
          group,
          queue: groupQueueOption(spec, group),
          // A group queue always dead-letters somewhere: into `${topic}-dlq` when none was declared.
          deadLetterTopic: spec.deadLetterTopic ?? `${spec.topic}-dlq`,
          singleActiveConsumer: spec.ordered,
        });
      }
    });
  }

  #verifyTopology(spec: TopologySpec): Promise<MissingTopology[]> {
    return this.#topologyCall(spec, async () => {
      const missing: MissingTopology[] = [];
      if (!(await this.#topology.exists('exchange', spec.topic))) missing.push({ kind: 'topic', name: spec.topic });
      for (const group of spec.groups) {
        if (!(await this.#topology.exists('queue', groupQueueOption(spec, group) ?? groupQueueName(spec.topic, group)))) missing.push({ kind: 'group', name: group, topic: spec.topic });
      }
      if (spec.deadLetterTopic !== undefined && !(await this.#topology.exists('exchange', spec.deadLetterTopic))) missing.push({ kind: 'dead-letter topic', name: spec.deadLetterTopic });
      return missing;
    });
  }

  async #topologyCall<T>(spec: TopologySpec, run: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new MqError('CLOSED', 'rabbitmq driver is closed');
    for (const name of [spec.topic, ...(spec.deadLetterTopic === undefined ? [] : [spec.deadLetterTopic])]) {
      if (!TOPIC_PATTERN.test(name)) throw new MqError('INVALID_MESSAGE', `topic "${name}" is not a valid rabbitmq topic name`);
    }
    try {
      return await run();
    } catch (err) {
      throw classifyError(err, `declaring topic "${spec.topic}"`);
    }
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
    const outcomes = new Array<SendOutcome>(envelopes.length);
    // The common case, nothing failed to declare: every envelope goes, at its own index.
    let valid: readonly Envelope[] = envelopes;
    let index: number[] | undefined;
    if (declared.size > 0) {
      const kept: Envelope[] = [];
      index = [];
      for (let i = 0; i < envelopes.length; i += 1) {
        const failure = declared.get(envelopes[i]!.topic);
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

  /** Declares the topic exchanges a batch needs; returns failures by topic. */
  async #declareFor(envelopes: readonly Envelope[]): Promise<Map<string, MqError>> {
    const failures = new Map<string, MqError>();
    if (!this.#topology.enabled) return failures;
    if (envelopes.every((e) => this.#topology.isExchangeDeclared(e.topic))) return failures;
    const wanted = new Set<string>();
    for (const envelope of envelopes) wanted.add(envelope.topic);
    await Promise.all(
      [...wanted].map(async (topic) => {
        try {
          await this.#topology.exchange(topic);
        } catch (err) {
          failures.set(topic, classifyError(err, 'declaring the topic exchange'));
        }
      }),
    );
    return failures;
  }

  async receiver(spec: SubscriptionSpec): Promise<RabbitReceiver> {
    if (this.#closed) throw new MqError('CLOSED', 'rabbitmq driver is closed');
    const options = parseSubscribeOptions(spec.options);
    prefetchCount(spec.maxInFlight); // CONFIG before anything is declared
    const queue = options.queue ?? groupQueueName(spec.topic, spec.group);
    if (!fitsName(retryDelayQueueName(queue, 99_000_000))) {
      throw new MqError('CONFIG', `group queue name "${queue}" is too long for RabbitMQ (255 bytes including the delay-queue suffix)`);
    }
    if (!TOPIC_PATTERN.test(spec.deadLetterTopic)) {
      throw new MqError('CONFIG', `dead-letter topic "${spec.deadLetterTopic}" is not a valid rabbitmq topic name`);
    }
    const { declare, deliveryLimit } = this.#settings.options;
    if (declare && spec.maxAttempts > deliveryLimit) {
      // RabbitMQ must never dead-letter before mqkit: no silent cap.
      throw new MqError(
        'CONFIG',
        `retry.maxAttempts ${spec.maxAttempts} exceeds the rabbitmq deliveryLimit option ${deliveryLimit}: RabbitMQ would dead-letter first (raise deliveryLimit or leave it unlimited)`,
        { details: { maxAttempts: spec.maxAttempts, deliveryLimit } },
      );
    }
    const receiver = new RabbitReceiver(
      { manager: this.#manager, topology: this.#topology, publisher: this.#publisher, logger: this.#logger, safeUrl: this.#settings.safeUrl },
      spec,
      options,
      () => this.#receivers.delete(receiver),
    );
    await receiver.start();
    this.#receivers.add(receiver);
    return receiver;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#receivers].map((r) => r.close()));
    this.#receivers.clear();
    await this.#publisher.settled(5_000);
    await this.#manager.close();
    this.#logger.debug({ url: this.#settings.safeUrl }, 'rabbitmq connection closed');
  }
}

/**
 * The AMQP message for `envelope`, always to its topic's exchange (mandatory: UNROUTABLE when no
 * group queue is bound, delayed or not). A delayed one carries its due time; each group's
 * consumer parks it in the group's delay queue until then (see receiver.ts).
 */
function toOutgoing(envelope: Envelope): Outgoing {
  const delayed = envelope.delayMs !== undefined && envelope.delayMs > 0;
  const options = toPublishOptions(envelope, undefined, delayed ? Date.now() + Math.ceil(envelope.delayMs) : undefined);
  const routingKey = envelope.key !== undefined && fitsName(envelope.key) ? envelope.key : '';
  return { exchange: envelope.topic, routingKey, content: toBuffer(envelope.body), options };
}

/** The group's own queue (its `queue` subscription option), when it names one. */
function groupQueueOption(spec: TopologySpec, group: string): string | undefined {
  const options = spec.groupOptions?.[group];
  return options === undefined ? undefined : parseSubscribeOptions(options).queue;
}

/** Shared: a confirmed send's outcome carries nothing per message. */
const OK: SendOutcome = Object.freeze({ ok: true });

function toBuffer(body: Uint8Array): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}
