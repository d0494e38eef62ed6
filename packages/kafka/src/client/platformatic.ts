/**
 * The @platformatic/kafka 2.12 implementation of the client seam. Everything specific to that
 * library lives here: idempotent producers (acks -1) behind the serial producer, manual commits
 * carrying the attempt log as offset metadata, read-committed consumers, transactions with
 * consumer offsets, admin, SASL/TLS.
 */
import {
  Admin,
  Consumer,
  FetchIsolationLevels,
  FindCoordinatorKeyTypes,
  kGetApi,
  ListOffsetTimestamps,
  MessagesStreamFallbackModes,
  MessagesStreamModes,
  murmur2,
  ProduceAcks,
  Producer,
  type BaseOptions,
  type CallbackWithPromise,
  type ConsumerOptions,
  type FetchOptions,
  type Message,
  type MessagesStream,
  type MessageToProduce,
  type SASLOptions,
} from '@platformatic/kafka';
import type { Logger } from '@mqkit/core/driver';
import type { KafkaSettings } from '../options.ts';
import { ID_HEADER } from '../records.ts';
import { classifyPlatformaticError, protocolErrorId } from './platformatic-errors.ts';
import type {
  AdminSeam,
  CommittedOffset,
  ConsumerListener,
  ConsumerSeam,
  ConsumerSettings,
  FetchedRecord,
  KafkaClientSeam,
  ProduceRecord,
  TopicOffsets,
  TopicSpec,
  TransactionalProducerSeam,
  TransactionSeam,
} from './seam.ts';
import { SerialProducer, type WrittenPartition } from './serial-producer.ts';

type HeaderValue = Buffer | string;
type PltProducer = Producer<Buffer, Buffer, string, HeaderValue>;
type PltMessage = MessageToProduce<Buffer, Buffer, string, HeaderValue>;

/** Header keys and values as strings or Buffers, encoded by the client while writing (no copy here). */
const serializers = {
  headerKey: (key?: string) => (key === undefined ? undefined : Buffer.from(key)),
  headerValue: (value?: HeaderValue) => (value === undefined || Buffer.isBuffer(value) ? value : Buffer.from(value)),
};

/** Java's (and kafkajs') murmur2 partitioning of keys; keyless records hash their mqkit id (stable across retries). */
export function stablePartition(message: PltMessage, key: Buffer | undefined): number {
  let hashed: Buffer | string | undefined = key;
  if (hashed === undefined || hashed.length === 0) {
    const headers = message.headers as Record<string, HeaderValue> | undefined;
    hashed = headers?.[ID_HEADER];
  }
  return hashed === undefined ? 0 : murmur2(hashed) & 0x7fffffff;
}

function toMessage(topic: string, record: ProduceRecord): PltMessage {
  return {
    topic,
    key: record.key ?? undefined,
    value: record.value,
    headers: record.headers,
    timestamp: BigInt(record.timestamp),
  };
}

function saslOptions(settings: KafkaSettings): SASLOptions | undefined {
  const { sasl } = settings;
  if (!sasl) return undefined;
  const mechanism = ({ plain: 'PLAIN', 'scram-sha-256': 'SCRAM-SHA-256', 'scram-sha-512': 'SCRAM-SHA-512' } as const)[sasl.mechanism];
  return { mechanism, username: sasl.username, password: sasl.password };
}

/** Connection and retry options every client of this seam shares. */
export function platformaticBaseOptions(settings: KafkaSettings): BaseOptions {
  const maxRetryTime = settings.maxRetryTime;
  const sasl = saslOptions(settings);
  return {
    clientId: settings.clientId,
    bootstrapBrokers: [...settings.brokers],
    connectTimeout: settings.connectionTimeout,
    requestTimeout: settings.requestTimeout,
    // Client-level retries cover connection errors; kept modest so that core's reliable sender,
    // not the client, decides how long a publish keeps trying.
    retries: settings.retries,
    retryDelay: (_client, _operation, attempt) => Math.min(maxRetryTime, 100 * 2 ** Math.max(0, attempt - 1)),
    ...(settings.ssl === false ? {} : { tls: settings.ssl === true ? {} : { ...settings.ssl } }),
    ...(sasl ? { sasl } : {}),
  };
}

/** Builds the @platformatic/kafka client from validated settings. */
export function createPlatformaticSeam(settings: KafkaSettings, logger: Logger): KafkaClientSeam {
  const base = platformaticBaseOptions(settings);
  const compression = settings.compression;
  const produceOptions = {
    idempotent: true,
    acks: ProduceAcks.ALL,
    compression,
    partitioner: stablePartition,
    serializers,
    autocreateTopics: true,
  } as const;
  const classify = (error: unknown, context?: Readonly<Record<string, unknown>>) => classifyPlatformaticError(error, context);

  return {
    library: '@platformatic/kafka',
    native: { baseOptions: base },
    classify,

    async producer() {
      const producer = new SerialProducer(async () => {
        const native: PltProducer = new Producer({ ...base, ...produceOptions });
        try {
          // Connects and takes a producer id now, so that a wrong address fails here.
          await native.initIdempotentProducer({});
        } catch (err) {
          await native.close().catch(() => {});
          throw err;
        }
        return {
          async sendBatch(topics): Promise<WrittenPartition[]> {
            const messages: PltMessage[] = [];
            for (const t of topics) for (const record of t.records) messages.push(toMessage(t.topic, record));
            const result = await native.send({ messages });
            return (result.offsets ?? []).map((o) => ({ topic: o.topic, partition: o.partition, baseOffset: String(o.offset) }));
          },
          disconnect: () => native.close(),
        };
      }, logger);
      await producer.connect();
      return producer;
    },

    async transactionalProducer(transactionalId: string): Promise<TransactionalProducerSeam> {
      // `timeout` is what the library sends as the transaction timeout (and produce timeout).
      const producer: PltProducer = new Producer({ ...base, ...produceOptions, transactionalId, timeout: settings.transactionTimeout });
      let admin: Admin | undefined;
      const coordinators = new Map<string, number>();
      /** TxnOffsetCommit goes to the group's coordinator, found once per group. */
      const coordinatorOf = async (groupId: string): Promise<number> => {
        const known = coordinators.get(groupId);
        if (known !== undefined) return known;
        admin ??= new Admin(base);
        const [found] = await admin.findCoordinator({ keyType: FindCoordinatorKeyTypes.GROUP, keys: [groupId] });
        if (!found) throw new Error(`kafka: no coordinator found for group ${groupId}`);
        coordinators.set(groupId, found.nodeId);
        return found.nodeId;
      };
      return {
        async begin(): Promise<TransactionSeam> {
          const tx = await producer.beginTransaction();
          return {
            async send(topic, records) {
              await tx.send({ messages: records.map((r) => toMessage(topic, r)) });
            },
            async sendOffsets(groupId, offsets) {
              const coordinatorId = await coordinatorOf(groupId);
              // Only the group id is read from the consumer: offsets are committed as an outside
              // producer (no member id / generation), as with kafkajs' sendOffsets.
              await tx.addConsumer({ groupId } as Consumer<Buffer, Buffer, Buffer, Buffer>);
              for (const o of offsets) {
                for (const p of o.partitions) {
                  // addOffset commits `offset + 1` of the message it is given.
                  await tx.addOffset({
                    topic: o.topic,
                    partition: p.partition,
                    offset: BigInt(p.offset) - 1n,
                    metadata: { consumer: { groupId, generationId: -1, memberId: '', coordinatorId } },
                  } as unknown as Message);
                }
              }
            },
            commit: () => tx.commit(),
            abort: () => tx.abort(),
          };
        },
        async disconnect() {
          await Promise.allSettled([producer.close(), admin?.close()]);
        },
      };
    },

    consumer(consumerSettings: ConsumerSettings): ConsumerSeam {
      return new PlatformaticConsumer(base, consumerSettings, settings.groupProtocol, logger);
    },

    async admin(): Promise<AdminSeam> {
      const admin = new Admin(base);
      try {
        await admin.listTopics();
      } catch (err) {
        await admin.close().catch(() => {});
        throw err;
      }
      return platformaticAdmin(admin);
    },
  };
}

function platformaticAdmin(admin: Admin): AdminSeam {
  return {
    async ensureTopics(specs: readonly TopicSpec[]) {
      const existing = new Set(await admin.listTopics());
      const missing = specs.filter((s) => !existing.has(s.topic));
      // One request per topic: topic configs apply to the whole request.
      await Promise.all(
        missing.map(async (s) => {
          try {
            await admin.createTopics({
              topics: [s.topic],
              partitions: s.numPartitions,
              replicas: s.replicationFactor,
              ...(s.minInsyncReplicas === undefined ? {} : { configs: [{ name: 'min.insync.replicas', value: String(s.minInsyncReplicas) }] }),
            });
          } catch (err) {
            // Another process created it in between: idempotent by design.
            if (protocolErrorId(err) !== 'TOPIC_ALREADY_EXISTS') throw err;
          }
        }),
      );
      if (missing.length > 0) await waitForLeaders(admin, missing.map((s) => s.topic));
    },
    async topicPartitions(topics: readonly string[]) {
      const existing = new Set(await admin.listTopics());
      const present = topics.filter((t) => existing.has(t));
      const counts = new Map<string, number>();
      if (present.length === 0) return counts;
      const metadata = await admin.metadata({ topics: present, forceUpdate: true });
      for (const t of present) {
        const m = metadata.topics.get(t);
        if (m) counts.set(t, m.partitionsCount);
      }
      return counts;
    },
    async declareGroup(groupId: string, topic: string) {
      const [group] = await admin.listConsumerGroupOffsets({ groups: [groupId] });
      const committed = group?.topics.find((t) => t.name === topic)?.partitions ?? [];
      if (committed.some((p) => p.committedOffset >= 0n)) return;
      const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
      const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
      const partitions = Array.from({ length: count }, (_, partitionIndex) => ({ partitionIndex, timestamp: ListOffsetTimestamps.EARLIEST }));
      const [listed] = await admin.listOffsets({ topics: [{ name: topic, partitions }] });
      try {
        await admin.alterConsumerGroupOffsets({
          groupId,
          topics: [{ name: topic, partitionOffsets: (listed?.partitions ?? []).map((p) => ({ partition: p.partitionIndex, offset: p.offset })) }],
        });
      } catch (err) {
        // A member joined in between: the group exists, and its member decides where to start.
        const groups = await admin.describeGroups({ groups: [groupId] }).catch(() => undefined);
        if ((groups?.get(groupId)?.members.size ?? 0) === 0) throw err;
      }
    },
    async existingGroups(groupIds: readonly string[]) {
      const groups = await admin.listGroups({ types: ['classic', 'consumer'] });
      return new Set(groupIds.filter((g) => groups.has(g)));
    },
    disconnect: () => admin.close(),
  };
}

/**
 * Waits until every partition of `topics` has a leader (kafkajs' `waitForLeaders`): right after
 * CreateTopics the first produce or fetch can otherwise meet UNKNOWN_TOPIC_OR_PARTITION.
 */
async function waitForLeaders(admin: Admin, topics: readonly string[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const metadata = await admin.metadata({ topics: [...topics], forceUpdate: true }).catch(() => undefined);
    const ready = metadata !== undefined && topics.every((t) => {
      const m = metadata.topics.get(t);
      return m !== undefined && m.partitionsCount > 0 && m.partitions.every((p) => p !== undefined && p.leader >= 0);
    });
    if (ready || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Header values as the records module reads them: one value, or an array for a repeated key. */
function headersOf(message: Message): Record<string, unknown> | undefined {
  const entries = message.headerEntries;
  if (entries.length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) {
    const key = k.toString();
    const prev = out[key];
    out[key] = prev === undefined ? v : Array.isArray(prev) ? [...(prev as unknown[]), v] : [prev, v];
  }
  return out;
}

function toFetched(message: Message): FetchedRecord {
  return {
    offset: String(message.offset),
    key: message.key ?? null,
    value: message.value ?? null,
    headers: headersOf(message),
    timestamp: String(message.timestamp),
  };
}

/** The parts of a fetch answer and of an OffsetCommit request touched here. */
interface FetchResponse {
  responses: unknown[];
}
interface OffsetCommitRequestTopic {
  name: string;
  partitions: Array<{ partitionIndex: number; committedOffset: bigint; committedMetadata?: string | null }>;
}
type FetchFn = (options: FetchOptions<Buffer, Buffer, Buffer, Buffer>, callback: CallbackWithPromise<FetchResponse>) => void;
type OffsetCommitApi = (connection: unknown, groupId: string, epoch: number, memberId: string, instanceId: string | null, topics: OffsetCommitRequestTopic[], callback: (err: Error | null, value?: unknown) => void) => void;

/**
 * One group member over the library's consumer and its messages stream. What the stream does not
 * offer is added at its edges, on this member's own instances:
 * - commits carry metadata (the attempt log): the member's OffsetCommit requests get it filled in,
 *   so that the library keeps handling coordinators, generations and member epochs;
 * - backpressure holds the member's next fetch request (heartbeats run on their own timer, so
 *   the membership stays) instead of pausing the stream;
 * - on every (re)assignment the fetch positions restart from the committed offsets, and the answer
 *   of a fetch sent before it is dropped (its records come again from the committed position).
 */
class PlatformaticConsumer implements ConsumerSeam {
  readonly #base: BaseOptions;
  readonly #settings: ConsumerSettings;
  readonly #groupProtocol: 'classic' | 'consumer';
  readonly #logger: Logger;
  #listener: ConsumerListener | undefined;
  #consumer: Consumer | undefined;
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  #admin: Admin | undefined;
  /** Bumped on every assignment: fetches sent before it are stale. */
  #generation = 0;
  /** Metadata of commits in flight, by `topic:partition:offset`. */
  readonly #commitMetadata = new Map<string, string>();
  /** Set while the listener has no room: the next fetch waits for it. */
  #room: Promise<void> | undefined;
  /** Records of the fetch answer being handed over, per partition. */
  #collecting: Map<number, FetchedRecord[]> | undefined;
  #lastAssignment = '';
  #paused = false;
  #stopped = false;
  #restartTimer: NodeJS.Timeout | undefined;

  constructor(base: BaseOptions, settings: ConsumerSettings, groupProtocol: 'classic' | 'consumer', logger: Logger) {
    this.#base = base;
    this.#settings = settings;
    this.#groupProtocol = groupProtocol;
    this.#logger = logger;
  }

  async start(listener: ConsumerListener): Promise<void> {
    this.#listener = listener;
    await this.#run();
  }

  #consumerOptions(): ConsumerOptions<Buffer, Buffer, Buffer, Buffer> {
    const s = this.#settings;
    const common = {
      ...this.#base,
      groupId: s.groupId,
      autocommit: false,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      maxWaitTime: s.maxWaitTimeInMs,
    };
    // KIP-848: session timeout and heartbeat interval are the broker's (group.consumer.*).
    return this.#groupProtocol === 'consumer'
      ? { ...common, groupProtocol: 'consumer' }
      : { ...common, sessionTimeout: s.sessionTimeout, heartbeatInterval: s.heartbeatInterval, rebalanceTimeout: Math.max(s.sessionTimeout, 30_000) };
  }

  async #run(): Promise<void> {
    const s = this.#settings;
    const consumer = new Consumer(this.#consumerOptions());
    this.#consumer = consumer;
    this.#instrument(consumer);
    consumer.on('consumer:group:join', () => this.#assigned(consumer, 'join'));
    // KIP-848 members get assignment changes through heartbeats, without a join event.
    consumer.on('consumer:heartbeat:end', () => this.#assigned(consumer, 'changed'));
    const stream = await consumer.consume({
      topics: [s.topic],
      mode: MessagesStreamModes.COMMITTED,
      fallbackMode: s.fromBeginning ? MessagesStreamFallbackModes.EARLIEST : MessagesStreamFallbackModes.LATEST,
      autocommit: false,
      maxWaitTime: s.maxWaitTimeInMs,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      // Flowing: records are handed over as they are parsed; backpressure is on fetching.
      highWaterMark: 1 << 20,
    });
    if (this.#consumer !== consumer) {
      await stream.close().catch(() => {});
      return;
    }
    this.#stream = stream;
    stream.on('data', (message: Message) => this.#onMessage(message));
    stream.on('error', (err: Error) => {
      if (this.#consumer !== consumer || this.#stopped) return;
      this.#listener?.onCrash(err, true);
      this.#restart();
    });
    this.#assigned(consumer, 'start');
    if (this.#paused) stream.pause();
  }

  /** Wraps this member's fetch (stale answers, backpressure) and OffsetCommit (metadata). */
  #instrument(consumer: Consumer): void {
    const fetch = consumer.fetch.bind(consumer) as FetchFn;
    const wrapped: FetchFn = (options, callback) => {
      const send = (): void => {
        const generation = this.#generation;
        fetch(options, (err, response) => {
          if (err || !response || generation === this.#generation || this.#consumer !== consumer) {
            this.#handOver(() => callback(err, response));
            return;
          }
          // Sent before the latest assignment: its records come again from the committed offsets.
          callback(null, { ...response, responses: [] });
        });
      };
      const room = this.#room;
      if (room) void room.then(send, send);
      else send();
    };
    (consumer as unknown as { fetch: FetchFn }).fetch = wrapped;

    const getApi = consumer[kGetApi].bind(consumer) as (name: string, cb: (err: Error | null, api?: unknown) => void) => void;
    (consumer as unknown as Record<symbol, unknown>)[kGetApi] = (name: string, cb: (err: Error | null, api?: unknown) => void) => {
      getApi(name, (err, api) => {
        if (err || name !== 'OffsetCommit') return cb(err, api);
        const commit = api as OffsetCommitApi;
        const withMetadata: OffsetCommitApi = (connection, groupId, epoch, memberId, instanceId, topics, done) => {
          for (const t of topics) {
            for (const p of t.partitions) p.committedMetadata = this.#commitMetadata.get(`${t.name}:${p.partitionIndex}:${p.committedOffset}`) ?? null;
          }
          commit(connection, groupId, epoch, memberId, instanceId, topics, done);
        };
        cb(null, withMetadata);
      });
    };
  }

  /** Collects the records one fetch answer pushes (synchronously), then hands them over per partition. */
  #handOver(push: () => void): void {
    const collecting = new Map<number, FetchedRecord[]>();
    this.#collecting = collecting;
    try {
      push();
    } finally {
      this.#collecting = undefined;
    }
    this.#flush(collecting);
  }

  #onMessage(message: Message): void {
    if (message.topic !== this.#settings.topic) return;
    const collecting = this.#collecting;
    if (collecting) {
      const list = collecting.get(message.partition);
      if (list) list.push(toFetched(message));
      else collecting.set(message.partition, [toFetched(message)]);
      return;
    }
    // Emitted outside a fetch answer (buffered by the stream): handed over alone.
    this.#flush(new Map([[message.partition, [toFetched(message)]]]));
  }

  #flush(byPartition: Map<number, FetchedRecord[]>): void {
    const listener = this.#listener;
    if (!listener || this.#stopped) return;
    let wait: Promise<void> | undefined;
    for (const [partition, records] of byPartition) {
      const room = listener.onBatch({ topic: this.#settings.topic, partition, records });
      if (room) wait = wait ? Promise.all([wait, room]).then(() => {}) : room;
    }
    if (wait) this.#holdFetching(wait);
  }

  /** The next fetch waits for room, or for a rebalance or stop (then the wait is given up). */
  #holdFetching(room: Promise<void>): void {
    const generation = this.#generation;
    let check: NodeJS.Timeout | undefined;
    const held = new Promise<void>((resolve) => {
      void room.then(resolve, resolve);
      check = setInterval(() => {
        if (this.#stopped || generation !== this.#generation) resolve();
      }, 100);
    });
    this.#room = held;
    void held.then(() => {
      clearInterval(check);
      if (this.#room === held) this.#room = undefined;
    });
  }

  /**
   * Reports the assignment when it changed (or on a join), after restarting the fetch positions
   * of the topic from the committed offsets: the stream refreshes them on a join; positions it
   * still holds would skip what was fetched but not committed.
   */
  #assigned(consumer: Consumer, why: 'join' | 'start' | 'changed'): void {
    if (this.#consumer !== consumer || this.#stopped || consumer.assignments === null) return;
    const topic = this.#settings.topic;
    const partitions = [...(consumer.assignments.find((a) => a.topic === topic)?.partitions ?? [])].sort((a, b) => a - b);
    const key = `${consumer.memberId ?? ''}|${partitions.join(',')}`;
    if (why !== 'join' && key === this.#lastAssignment) return;
    // KIP-848: a new member's first assignment is usually empty only until the broker has moved
    // partitions to it over the next heartbeats; reported once it has some (or, if it never
    // does, subscribe() gives up waiting after joinTimeoutMs), like a classic join that waits for
    // the group's new assignment.
    if (this.#groupProtocol === 'consumer' && this.#lastAssignment === '' && partitions.length === 0) return;
    // Outside a join the stream keeps its positions: it is made to refresh them (below).
    const refresh = why === 'changed' ? this.#refresher() : undefined;
    if (why === 'changed' && !refresh) return;
    this.#lastAssignment = key;
    this.#generation += 1;
    this.#room = undefined;
    const toFetch = this.#stream?.offsetsToFetch;
    if (toFetch) for (const k of [...toFetch.keys()]) if (k.startsWith(`${topic}:`)) toFetch.delete(k);
    this.#listener?.onAssignment({ [topic]: partitions });
    refresh?.();
  }

  /**
   * The stream's own "refresh offsets and fetch" (what it runs on a join), for KIP-848 assignment
   * changes, which come through heartbeats. Found by its symbol's description: it is not exported.
   */
  #refresher(): (() => void) | undefined {
    const stream = this.#stream as unknown as Record<symbol, unknown> | undefined;
    if (!stream) return undefined;
    const symbol = Object.getOwnPropertySymbols(Object.getPrototypeOf(stream)).find((s) => s.description === 'plt.kafka.messagesStream.refreshOffsetsAndFetch');
    const refresh = symbol === undefined ? undefined : stream[symbol];
    return typeof refresh === 'function' ? () => (refresh as () => void).call(stream) : undefined;
  }

  #restart(): void {
    clearTimeout(this.#restartTimer);
    const old = this.#consumer;
    const oldStream = this.#stream;
    this.#consumer = undefined;
    this.#stream = undefined;
    this.#restartTimer = setTimeout(() => {
      void (async () => {
        await oldStream?.close().catch(() => {});
        await old?.close(true).catch(() => {});
        if (this.#stopped) return;
        try {
          await this.#run();
        } catch (err) {
          this.#listener?.onCrash(err, true);
          this.#restart();
        }
      })();
    }, 1_000);
    this.#restartTimer.unref?.();
  }

  pause(): void {
    this.#paused = true;
    this.#stream?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.#stream?.resume();
  }

  async commit(offsets: TopicOffsets): Promise<void> {
    const consumer = this.#consumer;
    if (!consumer) throw new Error('kafka consumer is restarting; commit skipped');
    const keys: string[] = [];
    for (const p of offsets.partitions) {
      if (p.metadata === undefined) continue;
      const key = `${offsets.topic}:${p.partition}:${p.offset}`;
      this.#commitMetadata.set(key, p.metadata);
      keys.push(key);
    }
    try {
      await consumer.commit({
        offsets: offsets.partitions.map((p) => ({ topic: offsets.topic, partition: p.partition, offset: BigInt(p.offset), leaderEpoch: -1 })),
      });
    } finally {
      for (const key of keys) this.#commitMetadata.delete(key);
    }
  }

  async committed(): Promise<readonly CommittedOffset[]> {
    const { topic, groupId } = this.#settings;
    this.#admin ??= new Admin(this.#base);
    const [group] = await this.#admin.listConsumerGroupOffsets({ groups: [groupId] });
    const partitions = group?.topics.find((t) => t.name === topic)?.partitions ?? [];
    return partitions.map((p) => ({ partition: p.partitionIndex, offset: String(p.committedOffset), metadata: p.metadata ?? null }));
  }

  async disconnect(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    const consumer = this.#consumer;
    const stream = this.#stream;
    this.#consumer = undefined;
    this.#stream = undefined;
    await this.#admin?.close().catch(() => {});
    try {
      await stream?.close();
      await consumer?.close();
    } catch (err) {
      this.#logger.warn({ err, groupId: this.#settings.groupId }, 'kafka consumer disconnect failed');
      await consumer?.close(true).catch(() => {});
    }
  }
}
