/**
 * The adapter's own small interface over a Kafka client library. The driver's logic (offset
 * bookkeeping, redelivery, transactions) talks only to this seam, so a second client (e.g.
 * @platformatic/kafka) can be added and benchmarked by implementing it, without touching the
 * driver. kafkajs is the implementation today ({@link ./kafkajs.ts}).
 */
import type { MqError } from '@mqkit/core/driver';

/** A record to produce. */
export interface ProduceRecord {
  readonly key: Buffer | null;
  readonly value: Buffer;
  /** Header values; strings are encoded as UTF-8 by the client. */
  readonly headers: Readonly<Record<string, Buffer | string>>;
  /** Epoch ms, as a decimal string (CreateTime). */
  readonly timestamp: string;
}

/** Where a produced record set landed: one entry per partition written. */
export interface ProducedPartition {
  readonly partition: number;
  readonly baseOffset: string;
}

/**
 * One topic's records for {@link ProducerSeam.send}, built only when the producer writes them:
 * sends queued behind a request in flight hold their messages, not record copies of them.
 */
export interface ProduceBatch {
  /** At least the records' encoded size in bytes, for sizing requests. */
  readonly bytes: number;
  records(): readonly ProduceRecord[];
  /**
   * The records in consecutive chunks of at most `maxBytes` each by the same estimate (a record
   * larger than that goes alone); one chunk when the whole batch fits.
   */
  chunks(maxBytes: number): ReadonlyArray<readonly ProduceRecord[]>;
}

/** An idempotent producer (acks = all). */
export interface ProducerSeam {
  /** Resolves once every record is acknowledged by all in-sync replicas. */
  send(topic: string, batch: ProduceBatch): Promise<ProducedPartition[]>;
  disconnect(): Promise<void>;
}

/** Offsets to commit: the next offset to read (last processed + 1) per partition. */
export interface TopicOffsets {
  readonly topic: string;
  /** `metadata`: the group's own string stored with the offset (the adapter's attempt log). */
  readonly partitions: ReadonlyArray<{ readonly partition: number; readonly offset: string; readonly metadata?: string }>;
}

/** A partition's committed position and metadata; offset `-1` = nothing committed yet. */
export interface CommittedOffset {
  readonly partition: number;
  readonly offset: string;
  readonly metadata: string | null;
}

/** One open transaction of a {@link TransactionalProducerSeam}. */
export interface TransactionSeam {
  send(topic: string, records: readonly ProduceRecord[]): Promise<void>;
  /** Consume-transform-produce: commit these consumer offsets with the transaction. */
  sendOffsets(groupId: string, offsets: readonly TopicOffsets[]): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** A transactional producer: one transaction at a time. */
export interface TransactionalProducerSeam {
  begin(): Promise<TransactionSeam>;
  disconnect(): Promise<void>;
}

/**
 * A fetched record. Shaped like the client's own message objects so that the seam can pass them
 * through without a copy per record.
 */
export interface FetchedRecord {
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** Header values as the client decoded them (Buffers, strings, or arrays of them for repeats). */
  readonly headers?: Readonly<Record<string, unknown>> | undefined;
  readonly timestamp: string;
}

/** Records of one partition, in offset order. */
export interface FetchedBatch {
  readonly topic: string;
  readonly partition: number;
  readonly records: readonly FetchedRecord[];
}

/** Callbacks of a running consumer. */
export interface ConsumerListener {
  /**
   * Fetched records. Called synchronously per batch; the seam advances its fetch position past
   * them (they will not be fetched again unless the group rebalances or the consumer restarts).
   * A returned promise is backpressure: the seam fetches nothing more until it settles, keeping
   * the group membership alive (heartbeats) meanwhile and giving up the wait when the consumer
   * stops or the group rebalances.
   */
  onBatch(batch: FetchedBatch): void | Promise<void>;
  /**
   * The group (re)assigned partitions. Fetching restarts from the committed offsets, so anything
   * past them that was fetched before comes again.
   */
  onAssignment(partitionsByTopic: Readonly<Record<string, readonly number[]>>): void;
  /** The consumer crashed; `restarting` tells whether the client restarts it by itself. */
  onCrash(error: unknown, restarting: boolean): void;
}

/** Settings of one group member. */
export interface ConsumerSettings {
  readonly groupId: string;
  readonly topic: string;
  readonly fromBeginning: boolean;
  readonly sessionTimeout: number;
  readonly heartbeatInterval: number;
  readonly maxWaitTimeInMs: number;
}

/** A consumer-group member with manual commits and read-committed isolation. */
export interface ConsumerSeam {
  start(listener: ConsumerListener): Promise<void>;
  /** Stops fetching until {@link resume} (used on close; backpressure goes through onBatch). */
  pause(): void;
  resume(): void;
  /** Commits the next offsets to read (processed + 1), with their metadata. */
  commit(offsets: TopicOffsets): Promise<void>;
  /** The group's committed offsets and metadata for every partition of the topic. */
  committed(): Promise<readonly CommittedOffset[]>;
  disconnect(): Promise<void>;
}

/** Topic declaration. */
export interface TopicSpec {
  readonly topic: string;
  readonly numPartitions: number;
  /** -1 = the broker's default. */
  readonly replicationFactor: number;
  /** `min.insync.replicas` of the topic; the broker's default when absent. */
  readonly minInsyncReplicas?: number | undefined;
}

export interface AdminSeam {
  /** Creates the topics that do not exist yet; existing ones are left alone. */
  ensureTopics(specs: readonly TopicSpec[]): Promise<void>;
  /** Partition counts of those of `topics` that exist (a missing topic is absent from the map). */
  topicPartitions(topics: readonly string[]): Promise<Map<string, number>>;
  /**
   * Makes consumer group `groupId` exist on `topic` before any member joins: when it has no
   * committed offset there, commits each partition's earliest retained offset, so the group's
   * first member starts there whatever its `fromBeginning`. A group with offsets is left alone.
   */
  declareGroup(groupId: string, topic: string): Promise<void>;
  /** Those of `groupIds` the cluster knows (joined once, or with committed offsets). */
  existingGroups(groupIds: readonly string[]): Promise<Set<string>>;
  disconnect(): Promise<void>;
}

/** Everything the driver needs from a Kafka client library. */
export interface KafkaClientSeam {
  /** Library name for logs (`kafkajs`). */
  readonly library: string;
  /** The library's own client object (escape hatch). */
  readonly native: unknown;
  /** A connected idempotent producer. */
  producer(): Promise<ProducerSeam>;
  /** A connected transactional producer with the given transactional id. */
  transactionalProducer(transactionalId: string): Promise<TransactionalProducerSeam>;
  consumer(settings: ConsumerSettings): ConsumerSeam;
  /** A connected admin client. */
  admin(): Promise<AdminSeam>;
  /** Maps the library's errors onto mqkit codes. */
  classify(error: unknown, context?: Readonly<Record<string, unknown>>): MqError;
}
