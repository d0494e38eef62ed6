/**
 * The kafkajs 2.2.4 implementation of the client seam. Everything kafkajs-specific lives here:
 * producer flags (idempotent, acks -1, at most 5 requests in flight), client-level retries,
 * manual commits with `offset + 1`, read-committed consumers, transactions, logging.
 */
import {
  AssignerProtocol,
  Kafka,
  logLevel,
  CompressionTypes,
  type Admin,
  type Consumer,
  type KafkaConfig,
  type LogEntry,
  type Producer,
  type SASLOptions,
} from 'kafkajs';
import { settledWithin, uninstrumented, type Logger } from '@mqkit/core/driver';
import type { KafkaSettings } from '../options.ts';
import { classifyKafkaError } from './kafkajs-errors.ts';
import { SerialIdempotentProducer, stablePartitioner, toKafkajsMessage } from './kafkajs-producer.ts';
import type {
  AdminSeam,
  CommittedOffset,
  ConsumerListener,
  ConsumerSeam,
  ConsumerSettings,
  KafkaClientSeam,
  ProducerSeam,
  TopicOffsets,
  TopicSpec,
  TransactionalProducerSeam,
  TransactionSeam,
} from './seam.ts';

/** kafkajs warns about this on every idempotent producer with bounded retries; that is by design here. */
const EXPECTED_WARNINGS = /Limiting retries for the idempotent producer/;

function logCreator(logger: Logger) {
  return () =>
    ({ level, log }: LogEntry): void => {
      const { message, timestamp: _t, logger: _l, ...rest } = log;
      if (EXPECTED_WARNINGS.test(message)) return;
      const obj = { kafkajs: rest };
      if (level === logLevel.ERROR) logger.error(obj, `kafkajs: ${message}`);
      else if (level === logLevel.WARN) logger.warn(obj, `kafkajs: ${message}`);
      else if (level === logLevel.INFO) logger.debug(obj, `kafkajs: ${message}`);
    };
}

function saslOptions(settings: KafkaSettings): SASLOptions | undefined {
  const { sasl } = settings;
  if (!sasl) return undefined;
  return { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password };
}

/** Builds the kafkajs client from validated settings. */
export function createKafkajsSeam(settings: KafkaSettings, logger: Logger): KafkaClientSeam {
  const config: KafkaConfig = {
    clientId: settings.clientId,
    brokers: [...settings.brokers],
    ssl: settings.ssl === false ? false : settings.ssl === true ? true : { ...settings.ssl },
    sasl: saslOptions(settings),
    connectionTimeout: settings.connectionTimeout,
    requestTimeout: settings.requestTimeout,
    // Client-level retries cover connection errors; kept modest so that core's reliable sender,
    // not kafkajs, decides how long a publish keeps trying.
    retry: { retries: settings.retries, initialRetryTime: 100, maxRetryTime: settings.maxRetryTime },
    logLevel: logLevel.INFO,
    logCreator: logCreator(logger),
  };
  const kafka = new Kafka(config);
  const compression = settings.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
  const classify = (error: unknown, context?: Readonly<Record<string, unknown>>) => classifyKafkaError(error, context);
  const producerRetry = { retries: settings.retries, initialRetryTime: 100, maxRetryTime: settings.maxRetryTime };

  return {
    library: 'kafkajs',
    native: kafka,
    classify,

    async producer(): Promise<ProducerSeam> {
      const producer = new SerialIdempotentProducer(
        kafka,
        { maxInFlightRequests: 5, retry: producerRetry, allowAutoTopicCreation: true },
        compression,
        logger,
      );
      await producer.connect();
      return producer;
    },

    async transactionalProducer(transactionalId: string): Promise<TransactionalProducerSeam> {
      const producer: Producer = kafka.producer({
        transactionalId,
        idempotent: true,
        maxInFlightRequests: 1,
        transactionTimeout: settings.transactionTimeout,
        retry: producerRetry,
        createPartitioner: stablePartitioner,
      });
      await producer.connect();
      return {
        async begin(): Promise<TransactionSeam> {
          const tx = await producer.transaction();
          return {
            async send(topic, records) {
              await tx.send({ topic, acks: -1, compression, messages: records.map(toKafkajsMessage) });
            },
            async sendOffsets(groupId, offsets) {
              await tx.sendOffsets({ consumerGroupId: groupId, topics: offsets.map((o) => ({ topic: o.topic, partitions: [...o.partitions] })) });
            },
            commit: () => tx.commit(),
            abort: () => tx.abort(),
          };
        },
        disconnect: () => producer.disconnect(),
      };
    },

    consumer(consumerSettings: ConsumerSettings): ConsumerSeam {
      return new KafkajsConsumer(kafka, consumerSettings, logger);
    },

    async admin(): Promise<AdminSeam> {
      const admin = kafka.admin();
      await admin.connect();
      return {
        async ensureTopics(specs: readonly TopicSpec[]) {
          const existing = new Set(await admin.listTopics());
          const missing = specs.filter((s) => !existing.has(s.topic));
          if (missing.length === 0) return;
          try {
            await admin.createTopics({
              waitForLeaders: true,
              topics: missing.map((s) => ({
                topic: s.topic,
                numPartitions: s.numPartitions,
                replicationFactor: s.replicationFactor,
                ...(s.minInsyncReplicas === undefined ? {} : { configEntries: [{ name: 'min.insync.replicas', value: String(s.minInsyncReplicas) }] }),
              })),
            });
          } catch (err) {
            // Another process created it in between: idempotent by design.
            if (!isTopicExists(err)) throw err;
          }
        },
        async topicPartitions(topics: readonly string[]) {
          const existing = new Set(await admin.listTopics());
          const present = topics.filter((t) => existing.has(t));
          const counts = new Map<string, number>();
          if (present.length === 0) return counts;
          const { topics: metadata } = await admin.fetchTopicMetadata({ topics: present });
          for (const t of metadata) counts.set(t.name, t.partitions.length);
          return counts;
        },
        async declareGroup(groupId: string, topic: string) {
          const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
          if (committed?.partitions.some((p) => p.offset !== '-1')) return;
          const offsets = await admin.fetchTopicOffsets(topic);
          // kafkajs commits them through a short-lived member of the group (a join, ~1-3 s).
          try {
            await admin.setOffsets({ groupId, topic, partitions: offsets.map((o) => ({ partition: o.partition, offset: o.low })) });
          } catch (err) {
            // A member joined in between: the group exists, and its member decides where to start.
            if (!/must have no running instances/.test(String((err as Error).message))) throw err;
          }
        },
        async existingGroups(groupIds: readonly string[]) {
          const { groups } = await admin.listGroups();
          const known = new Set(groups.map((g) => g.groupId));
          return new Set(groupIds.filter((g) => known.has(g)));
        },
        disconnect: () => admin.disconnect(),
      };
    },
  };
}

function isTopicExists(err: unknown): boolean {
  const e = err as { type?: unknown; errors?: Array<{ type?: unknown }> } | null;
  if (e?.type === 'TOPIC_ALREADY_EXISTS') return true;
  return Array.isArray(e?.errors) && e.errors.every((x) => x.type === 'TOPIC_ALREADY_EXISTS');
}


/**
 * One group member. kafkajs stops a consumer for good after a crash it deems non-retriable (e.g.
 * a connection error after its retries): this wrapper then builds a fresh kafkajs consumer and
 * starts again, so a subscription survives a broker restart.
 */
class KafkajsConsumer implements ConsumerSeam {
  readonly #kafka: Kafka;
  readonly #settings: ConsumerSettings;
  readonly #logger: Logger;
  #consumer: Consumer | undefined;
  #listener: ConsumerListener | undefined;
  #paused = false;
  #stopped = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #admin: Promise<Admin> | undefined;

  constructor(kafka: Kafka, settings: ConsumerSettings, logger: Logger) {
    this.#kafka = kafka;
    this.#settings = settings;
    this.#logger = logger;
  }

  async start(listener: ConsumerListener): Promise<void> {
    this.#listener = listener;
    // Connected while the group is joined: the first assignment reads the committed offsets and
    // their metadata through it before any record is handed over.
    // Its first offset fetch also connects to the group coordinator (~100 ms here): done now, while
    // joining, so that reading the attempt logs after the assignment takes one round trip.
    const { groupId, topic } = this.#settings;
    this.#adminClient()
      .then((admin) => admin.fetchOffsets({ groupId, topics: [topic] }))
      .catch((err: unknown) => this.#logger.debug({ err, groupId }, 'kafka admin warm-up failed; retried on use'));
    await this.#run();
  }

  async #run(): Promise<void> {
    const s = this.#settings;
    const consumer = this.#kafka.consumer({
      groupId: s.groupId,
      sessionTimeout: s.sessionTimeout,
      rebalanceTimeout: Math.max(s.sessionTimeout, 30_000),
      heartbeatInterval: s.heartbeatInterval,
      maxWaitTimeInMs: s.maxWaitTimeInMs,
      readUncommitted: false,
      allowAutoTopicCreation: false,
    });
    this.#consumer = consumer;
    const listener = this.#listener!;
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      if (this.#consumer !== consumer) return;
      listener.onAssignment(event.payload.memberAssignment);
      if (event.payload.isLeader) this.#scheduleAssignmentCheck(consumer, 1);
    });
    consumer.on(consumer.events.CRASH, (event) => {
      if (this.#consumer !== consumer) return;
      const restarting = event.payload.restart;
      listener.onCrash(event.payload.error, restarting);
      if (!restarting && !this.#stopped) this.#scheduleRestart();
    });
    await consumer.connect();
    await consumer.subscribe({ topic: s.topic, fromBeginning: s.fromBeginning });
    // Past an instrumentation's wrapper (e.g. @opentelemetry/instrumentation-kafkajs): it would start
    // a `poll` span per fetched batch as a root trace of its own beside mqkit's process spans.
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called on its consumer, through .call
    await uninstrumented(consumer.run).call(consumer, {
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      // kafkajs' payload functions are closures over the batch, not methods using `this`.
      // eslint-disable-next-line @typescript-eslint/unbound-method
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (!isRunning() || isStale() || this.#consumer !== consumer) return;
        // kafkajs' message objects already have the FetchedRecord shape: passed as they are.
        const room = listener.onBatch({ topic: batch.topic, partition: batch.partition, records: batch.messages });
        // Advance kafkajs' fetch position; what is committed is the listener's business.
        const last = batch.messages.at(-1);
        if (last) resolveOffset(last.offset);
        if (room) await this.#waitForRoom(room, consumer, heartbeat, isRunning);
      },
    });
    this.#applyPaused();
  }

  /**
   * Backpressure by not returning from eachBatch: kafkajs fetches after its batches are handled,
   * so it simply fetches nothing more until there is room, and fetches at once when there is.
   * (Pausing instead costs a stall: kafkajs sleeps `maxWaitTimeInMs` per fetch round while paused
   * and only notices a resume after it.) Heartbeats keep the membership while waiting; a
   * heartbeat failing on a rebalance ends the batch with that error, as kafkajs expects.
   */
  async #waitForRoom(room: Promise<void>, consumer: Consumer, heartbeat: () => Promise<void>, isRunning: () => boolean): Promise<void> {
    let ready = false;
    void room.then(() => {
      ready = true;
    });
    const tick = Math.max(50, Math.min(this.#settings.heartbeatInterval, 1_000));
    while (!ready) {
      await settledWithin(room, tick);
      if (ready || !isRunning() || this.#stopped || this.#consumer !== consumer) return;
      await heartbeat();
    }
  }

  #scheduleRestart(): void {
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      if (!this.#stopped) this.#restartNow();
    }, 1_000);
    this.#restartTimer.unref?.();
  }

  /**
   * kafkajs' leader assigns from the metadata it has at that moment and never rebalances when the
   * metadata changes. Right after a broker restart that metadata can lack partitions, which would
   * then stay unconsumed (observed). So the leader checks, a few seconds after each join, that
   * the group covers every partition of the topic, and rejoins when it does not.
   */
  #scheduleAssignmentCheck(consumer: Consumer, attempt: number): void {
    clearTimeout(this.#checkTimer);
    this.#checkTimer = setTimeout(() => {
      if (this.#stopped || this.#consumer !== consumer) return;
      void this.#assignmentCovered().then(
        (covered) => {
          if (covered || this.#stopped || this.#consumer !== consumer) return;
          this.#logger.warn({ groupId: this.#settings.groupId, topic: this.#settings.topic }, 'kafka group assignment misses partitions; rejoining');
          this.#restartNow();
        },
        (err: unknown) => {
          this.#logger.debug({ err, groupId: this.#settings.groupId }, 'kafka assignment check failed');
          if (attempt < 10) this.#scheduleAssignmentCheck(consumer, attempt + 1);
        },
      );
    }, 3_000);
    this.#checkTimer.unref?.();
  }

  /** One admin client per member, made on first use (assignment checks, committed offsets). */
  #adminClient(): Promise<Admin> {
    this.#admin ??= (async () => {
      const admin = this.#kafka.admin();
      await admin.connect();
      return admin;
    })().catch((err: unknown) => {
      this.#admin = undefined;
      throw err;
    });
    return this.#admin;
  }

  async #assignmentCovered(): Promise<boolean> {
    const { topic, groupId } = this.#settings;
    const admin = await this.#adminClient();
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    const partitions = metadata.topics[0]?.partitions.length ?? 0;
    const { groups } = await admin.describeGroups([groupId]);
    const group = groups[0];
    if (!group || group.state !== 'Stable') throw new Error(`group ${groupId} is ${group?.state ?? 'unknown'}`);
    const assigned = new Set<number>();
    for (const member of group.members) {
      const decoded = AssignerProtocol.MemberAssignment.decode(member.memberAssignment);
      for (const p of decoded?.assignment[topic] ?? []) assigned.add(p);
    }
    return assigned.size >= partitions;
  }

  #restartNow(): void {
    clearTimeout(this.#restartTimer);
    const old = this.#consumer;
    this.#consumer = undefined;
    void (async () => {
      await old?.disconnect().catch(() => {});
      if (this.#stopped) return;
      try {
        await this.#run();
      } catch (err) {
        this.#listener?.onCrash(err, true);
        this.#scheduleRestart();
      }
    })();
  }

  pause(): void {
    this.#paused = true;
    this.#applyPaused();
  }

  resume(): void {
    this.#paused = false;
    this.#applyPaused();
  }

  /** kafkajs throws when its group is not initialised (between a crash and the restart); run() re-applies. */
  #applyPaused(): void {
    try {
      if (this.#paused) this.#consumer?.pause([{ topic: this.#settings.topic }]);
      else this.#consumer?.resume([{ topic: this.#settings.topic }]);
    } catch (err) {
      this.#logger.debug({ err, groupId: this.#settings.groupId }, 'kafka pause/resume deferred until the consumer runs');
    }
  }

  async commit(offsets: TopicOffsets): Promise<void> {
    const consumer = this.#consumer;
    if (!consumer) throw new Error('kafka consumer is restarting; commit skipped');
    await consumer.commitOffsets(
      offsets.partitions.map((p) => ({ topic: offsets.topic, partition: p.partition, offset: p.offset, metadata: p.metadata ?? null })),
    );
  }

  async committed(): Promise<readonly CommittedOffset[]> {
    const { topic, groupId } = this.#settings;
    const admin = await this.#adminClient();
    const [result] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return (result?.partitions ?? []).map((p) => ({ partition: p.partition, offset: p.offset, metadata: p.metadata ?? null }));
  }

  async disconnect(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    clearTimeout(this.#checkTimer);
    await this.#admin?.then((admin) => admin.disconnect()).catch(() => {});
    const consumer = this.#consumer;
    this.#consumer = undefined;
    if (consumer) {
      try {
        await consumer.disconnect();
      } catch (err) {
        this.#logger.warn({ err, groupId: this.#settings.groupId }, 'kafka consumer disconnect failed');
      }
    }
  }
}
