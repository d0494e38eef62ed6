/**
 * A loss-free reliable producer on top of kafkajs' idempotent producer.
 *
 * kafkajs 2.2.4 rolls a partition's sequence number back when a produce request fails, then
 * retries later; if the broker had in fact written that request (e.g. it was SIGKILLed before
 * answering) and another send took the rolled-back sequence meanwhile with different messages,
 * the broker acknowledges them as duplicates and drops them: acknowledged yet lost (observed in
 * the broker-kill fault test). It also re-partitions keyless messages on each retry. So:
 * - one kafkajs send at a time per producer (concurrent publishes are merged into it, so
 *   batching is kept): nothing can take a rolled-back sequence except the same request's retry;
 * - a deterministic partitioner (keyless messages hash their mqkit id), so a retry resends the
 *   very same record batches;
 * - after a send that finally failed, the producer is replaced (new producer id, sequences from
 *   0): its state is uncertain, and core will resend (duplicates possible, never loss);
 * - a failed send fails, unsent, the sends queued behind it and those made before the next turn
 *   of the event loop (retryable): core books the failure first and then resends in publish
 *   order, so it can pipeline several batches of one key (`capabilities.orderedSends`).
 */
import { CompressionTypes, Partitioners, type Kafka, type Message, type Producer, type ProducerConfig } from 'kafkajs';
import { MqError, type Logger } from '@mqkit/core/driver';
import { ID_HEADER } from '../records.ts';
import type { ProduceBatch, ProducedPartition, ProduceRecord, ProducerSeam } from './seam.ts';

/** Bytes of payload per kafkajs request; Kafka's default message.max.bytes is ~1 MiB per record batch. */
const MAX_REQUEST_BYTES = 900 * 1024;

interface Pending {
  readonly topic: string;
  readonly batch: ProduceBatch;
  resolve(result: ProducedPartition[]): void;
  reject(error: unknown): void;
}

/** murmur2 like Java clients for keyed records; keyless ones hash their mqkit id (stable across retries). */
export function stablePartitioner() {
  const base = Partitioners.DefaultPartitioner();
  return (args: Parameters<ReturnType<typeof Partitioners.DefaultPartitioner>>[0]): number => {
    const { message } = args;
    if (message.key === null || message.key === undefined) {
      const id = message.headers?.[ID_HEADER];
      if (id !== undefined && !Array.isArray(id)) return base({ ...args, message: { ...message, key: id } });
    }
    return base(args);
  };
}

export class SerialIdempotentProducer implements ProducerSeam {
  readonly #kafka: Kafka;
  readonly #config: ProducerConfig;
  readonly #compression: CompressionTypes;
  readonly #logger: Logger;
  #producer: Promise<Producer> | undefined;
  readonly #queue: Pending[] = [];
  #running = false;
  #closed = false;
  /** Set by a failed send until the next turn of the event loop: new sends fail unsent. */
  #failed: unknown;

  constructor(kafka: Kafka, config: ProducerConfig, compression: CompressionTypes, logger: Logger) {
    this.#kafka = kafka;
    this.#config = { ...config, idempotent: true, createPartitioner: stablePartitioner };
    this.#compression = compression;
    this.#logger = logger;
  }

  /** Connects the first producer (so a wrong address fails at connect time). */
  async connect(): Promise<void> {
    await this.#current();
  }

  #current(): Promise<Producer> {
    if (!this.#producer) {
      const producer = this.#kafka.producer(this.#config);
      const connecting = producer.connect().then(() => producer);
      this.#producer = connecting;
      connecting.catch(() => {
        if (this.#producer === connecting) this.#producer = undefined;
      });
    }
    return this.#producer;
  }

  /** Drops the producer after an uncertain failure; the next send gets a fresh producer id. */
  #replace(failed: Promise<Producer>): void {
    if (this.#producer !== failed) return;
    this.#producer = undefined;
    void failed.then((p) => p.disconnect()).catch(() => {});
    this.#logger.debug({}, 'kafka producer replaced after a failed send');
  }

  send(topic: string, batch: ProduceBatch): Promise<ProducedPartition[]> {
    if (this.#closed) return Promise.reject(new Error('kafka producer is disconnected'));
    if (this.#failed !== undefined) return Promise.reject(notSent(this.#failed));
    return new Promise((resolve, reject) => {
      this.#queue.push({ topic, batch, resolve, reject });
      if (!this.#running) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const batch: Pending[] = [this.#queue.shift()!];
        let bytes = batch[0]!.batch.bytes;
        while (this.#queue.length > 0 && bytes + this.#queue[0]!.batch.bytes <= MAX_REQUEST_BYTES) {
          const next = this.#queue.shift()!;
          bytes += next.batch.bytes;
          batch.push(next);
        }
        await this.#sendMerged(batch);
      }
    } finally {
      this.#running = false;
    }
  }

  async #sendMerged(batch: Pending[]): Promise<void> {
    const producerPromise = this.#current();
    try {
      const producer = await producerPromise;
      // One request per chunk of ≤ MAX_REQUEST_BYTES; an oversized single send is split in order.
      const only = batch.length === 1 ? batch[0]! : undefined;
      const chunks = only === undefined ? [undefined] : only.batch.chunks(MAX_REQUEST_BYTES);
      let results: Array<{ topicName: string; partition: number; baseOffset?: string; offset?: string }> = [];
      for (const chunk of chunks) {
        const topicMessages = chunk === undefined ? mergeByTopic(batch) : [{ topic: only!.topic, messages: chunk as Message[] }];
        results = results.concat(await producer.sendBatch({ topicMessages, acks: -1, compression: this.#compression }));
      }
      for (const pending of batch) {
        const mine = results.filter((r) => r.topicName === pending.topic);
        pending.resolve(batch.length === 1 && chunks.length === 1 ? mine.map(toProduced) : []);
      }
    } catch (err) {
      this.#replace(producerPromise);
      for (const pending of batch) pending.reject(err);
      this.#failStop(err);
    }
  }

  /** Fails what queued behind a failed send, and new sends until the next turn of the loop. */
  #failStop(cause: unknown): void {
    const queued = this.#queue.splice(0);
    for (const pending of queued) pending.reject(notSent(cause));
    if (this.#failed === undefined) setImmediate(() => (this.#failed = undefined));
    this.#failed = cause;
  }

  async disconnect(): Promise<void> {
    this.#closed = true;
    const producer = this.#producer;
    this.#producer = undefined;
    if (producer) await (await producer.catch(() => undefined))?.disconnect();
  }
}

/** Why a send was not attempted: an earlier one failed (retryable; core resends in order). */
function notSent(cause: unknown): MqError {
  return new MqError('NOT_CONFIRMED', 'kafka: not sent because an earlier send on this producer failed', { cause, retryable: true });
}

function toProduced(r: { partition: number; baseOffset?: string; offset?: string }): ProducedPartition {
  return { partition: r.partition, baseOffset: r.baseOffset ?? r.offset ?? '-1' };
}

function mergeByTopic(batch: readonly Pending[]) {
  const byTopic = new Map<string, Message[]>();
  for (const pending of batch) {
    const list = byTopic.get(pending.topic) ?? [];
    for (const record of pending.batch.records()) list.push(toKafkajsMessage(record));
    byTopic.set(pending.topic, list);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

/**
 * A seam record is already a kafkajs message (key, value, headers, timestamp), built for this send
 * by `toRecord` and never mutated by kafkajs (it only reads them while encoding): no copy.
 */
export function toKafkajsMessage(record: ProduceRecord): Message {
  return record as Message;
}
