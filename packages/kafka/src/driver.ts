/**
 * The Kafka driver: reliable send on an idempotent producer, subscriptions as consumer-group
 * members with contiguous manual commits, native transactions, opt-in topic declaration.
 */
import { randomUUID } from 'node:crypto';
import {
  MqError,
  type Capabilities,
  type Driver,
  type DriverReceiver,
  type DriverTopology,
  type Envelope,
  type Logger,
  type SendOutcome,
  type SubscriptionSpec,
} from '@mqkit/core/driver';
import type { KafkaClientSeam, ProducerSeam, TopicOffsets, TopicSpec } from './client/seam.ts';
import { kafkaCapabilities } from './capabilities.ts';
import { parseKafkaSubscriptionOptions, type KafkaSettings } from './options.ts';
import { sendEnvelopes } from './send.ts';
import { KafkaSubscription } from './subscription.ts';
import { explainMissingTopic, kafkaTopology } from './topology.ts';
import { TransactionRunner, type KafkaDriverTransaction } from './transaction.ts';

/**
 * The Kafka consumer group id used for an mqkit group on a topic. kafkajs' assigners only hand
 * out topics the group leader subscribes to, so one Kafka group per (group, topic) pair.
 */
export function nativeGroupId(group: string, topic: string): string {
  return `${group}.${topic}`;
}

/** What `client.native` is for a Kafka client. */
export interface KafkaNative {
  /** The kafkajs `Kafka` instance (make your own producers, consumers, admin from it). */
  readonly kafka: unknown;
  /** Creates missing topics (idempotent): partitions and replication through the admin client. */
  declareTopics(specs: ReadonlyArray<{ topic: string; numPartitions?: number; replicationFactor?: number }>): Promise<void>;
  /**
   * Opens a native transaction that can also commit consumer offsets (consume-transform-produce,
   * see README). Use {@link nativeGroupId} for the group id. Commit or abort it yourself.
   */
  beginTransaction(): Promise<KafkaDriverTransaction>;
  /**
   * For consume-transform-produce: the Kafka group id and offsets to pass to
   * `tx.sendOffsets(groupId, [offsets])` so that the consumed message commits with the
   * transaction. The offset is the partition's contiguous position as if this delivery were acked
   * (never past an unfinished earlier message). Undefined when the partition moved away or an
   * earlier message is still unfinished at the head (then just ack after the commit).
   */
  transactionOffsets(delivery: { topic: string; group: string; meta: Readonly<Record<string, string>> }):
    | { groupId: string; offsets: TopicOffsets[] }
    | undefined;
}

export class KafkaDriver implements Driver {
  readonly name = 'kafka';
  readonly capabilities: Capabilities;
  readonly #seam: KafkaClientSeam;
  readonly #settings: KafkaSettings;
  readonly #logger: Logger;
  readonly #producer: ProducerSeam;
  readonly #transactions: TransactionRunner;
  readonly #subscriptions = new Set<KafkaSubscription>();
  readonly #declared = new Map<string, Promise<void>>();
  readonly native: KafkaNative;
  /** Topics through the admin client (partitions, replication); see topology.ts for groups. */
  readonly topology: DriverTopology;
  #closed = false;

  constructor(seam: KafkaClientSeam, producer: ProducerSeam, settings: KafkaSettings, logger: Logger) {
    this.#seam = seam;
    this.#producer = producer;
    this.#settings = settings;
    this.#logger = logger;
    this.capabilities = kafkaCapabilities(settings.maxMessageBytes, settings.maxBatchSize, settings.createTopics);
    this.#transactions = new TransactionRunner(seam, `${settings.clientId}-tx-${randomUUID()}`);
    this.topology = kafkaTopology({
      // Forced: an explicit declare checks the broker again rather than trusting this driver's cache.
      ensure: (specs) => this.#declare(specs, true),
      admin: () => seam.admin(),
      classify: (err, context) => seam.classify(err, context),
      numPartitions: settings.numPartitions,
      replicationFactor: settings.replicationFactor,
      minInsyncReplicas: settings.minInsyncReplicas,
      groupId: nativeGroupId,
      createsOnPublish: settings.createTopics,
    });
    this.native = {
      kafka: seam.native,
      declareTopics: (specs) =>
        this.#declare(
          specs.map((s) => ({
            topic: s.topic,
            numPartitions: s.numPartitions ?? settings.numPartitions,
            replicationFactor: s.replicationFactor ?? settings.replicationFactor,
            minInsyncReplicas: settings.minInsyncReplicas,
          })),
          true,
        ),
      beginTransaction: () => this.beginTransaction(),
      transactionOffsets: (delivery) => {
        const partition = Number(delivery.meta.partition);
        const offset = delivery.meta.offset;
        if (!Number.isInteger(partition) || offset === undefined || !/^\d+$/.test(offset)) return undefined;
        for (const sub of this.#subscriptions) {
          if (sub.topic !== delivery.topic || sub.group !== delivery.group) continue;
          const position = sub.transactionOffsets(partition, BigInt(offset).toString());
          if (position) return { groupId: sub.groupId, offsets: [{ topic: delivery.topic, partitions: [position] }] };
        }
        return undefined;
      },
    };
  }

  async send(envelopes: readonly Envelope[]): Promise<SendOutcome[]> {
    if (this.#closed) throw new MqError('CLOSED', 'kafka driver is closed');
    if (this.#settings.createTopics) {
      const topics = [...new Set(envelopes.map((e) => e.topic))];
      try {
        await this.#declare(topics.map((topic) => this.#topicSpec(topic)));
      } catch (err) {
        const error = this.#seam.classify(err, { topics });
        return envelopes.map(() => ({ ok: false, error }));
      }
    }
    const outcomes = await sendEnvelopes(this.#seam, this.#producer, envelopes);
    for (let i = 0; i < outcomes.length; i += 1) {
      const outcome = outcomes[i]!;
      if (!outcome.ok && outcome.error.code === 'NOT_FOUND') outcomes[i] = { ok: false, error: explainMissingTopic(outcome.error, envelopes[i]!.topic) };
    }
    return outcomes;
  }

  /** A consumer-group member for `spec` (see subscription.ts); core's PullSubscription runs it. */
  async receiver(spec: SubscriptionSpec): Promise<DriverReceiver> {
    if (this.#closed) throw new MqError('CLOSED', 'kafka driver is closed');
    const options = parseKafkaSubscriptionOptions(spec.options);
    if (this.#settings.createTopics) {
      try {
        await this.#declare([this.#topicSpec(spec.topic), this.#topicSpec(spec.deadLetterTopic)]);
      } catch (err) {
        throw this.#seam.classify(err, { topic: spec.topic });
      }
    }
    const groupId = nativeGroupId(spec.group, spec.topic);
    const subscription = new KafkaSubscription(
      this.#seam,
      spec,
      // Where `partition:offset` ids are unique: the cluster, the Kafka group (and so the topic).
      `kafka://${this.#settings.brokers.join(',')}\u0000${groupId}`,
      {
        groupId,
        fromBeginning: options.fromBeginning,
        sessionTimeout: options.sessionTimeout,
        heartbeatInterval: options.heartbeatInterval,
        maxWaitTimeInMs: options.maxWaitTimeInMs,
        maxBufferedMessages: options.maxBufferedMessages ?? Math.max(5_000, spec.maxInFlight * 8),
        joinTimeoutMs: options.joinTimeoutMs,
        commitIntervalMs: options.commitIntervalMs,
      },
      this.#logger,
      () => this.#subscriptions.delete(subscription),
    );
    this.#subscriptions.add(subscription);
    try {
      await subscription.start();
    } catch (err) {
      await subscription.close().catch(() => {});
      throw explainMissingTopic(this.#seam.classify(err, { topic: spec.topic, group: spec.group }), spec.topic, spec.group);
    }
    return subscription;
  }

  beginTransaction(): Promise<KafkaDriverTransaction> {
    if (this.#closed) return Promise.reject(new MqError('CLOSED', 'kafka driver is closed'));
    return this.#transactions.begin();
  }

  #topicSpec(topic: string): TopicSpec {
    return { topic, numPartitions: this.#settings.numPartitions, replicationFactor: this.#settings.replicationFactor, minInsyncReplicas: this.#settings.minInsyncReplicas };
  }

  /** Creates missing topics once per driver (cached), or every time when `force`. */
  async #declare(specs: readonly TopicSpec[], force = false): Promise<void> {
    const todo = force ? [...specs] : specs.filter((s) => !this.#declared.has(s.topic));
    if (todo.length > 0) {
      const run = (async () => {
        const admin = await this.#seam.admin();
        try {
          await admin.ensureTopics(todo);
        } finally {
          await admin.disconnect().catch(() => {});
        }
      })();
      for (const s of todo) {
        this.#declared.set(
          s.topic,
          run.catch((err: unknown) => {
            this.#declared.delete(s.topic);
            throw err;
          }),
        );
      }
    }
    await Promise.all(specs.map((s) => this.#declared.get(s.topic) ?? Promise.resolve()));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#subscriptions].map((s) => s.close()));
    await Promise.allSettled([this.#transactions.close(), this.#producer.disconnect()]);
  }
}
