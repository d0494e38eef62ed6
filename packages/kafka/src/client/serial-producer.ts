/**
 * A loss-free reliable producer on top of a client's idempotent producer, whatever the library.
 *
 * kafkajs 2.2.4 rolls a partition's sequence number back when a produce request fails, then
 * retries later; if the broker had in fact written that request (e.g. it was SIGKILLed before
 * answering) and another send took the rolled-back sequence meanwhile with different messages,
 * the broker acknowledges them as duplicates and drops them: acknowledged yet lost (observed in
 * the broker-kill fault test). Other clients are held to the same discipline rather than trusted
 * to get it right:
 * - one request at a time per producer (concurrent publishes are merged into it, so batching is
 *   kept): nothing can take a rolled-back sequence except the same request's retry;
 * - a deterministic partitioner (keyless messages hash their mqkit id, see the library files), so
 *   a retry resends the very same record batches;
 * - after a send that finally failed, the producer is replaced (new producer id, sequences from
 *   0): its state is uncertain, and core will resend (duplicates possible, never loss);
 * - a failed send fails, unsent, the sends queued behind it and those made before the next turn
 *   of the event loop (retryable): core books the failure first and then resends in publish
 *   order, so it can pipeline several batches of one key (`capabilities.orderedSends`).
 */
import { MqError, type Logger } from '@mqkit/core/driver';
import type { ProduceBatch, ProducedPartition, ProduceRecord, ProducerSeam } from './seam.ts';

/** Bytes of payload per request; Kafka's default message.max.bytes is ~1 MiB per record batch. */
export const MAX_REQUEST_BYTES = 900 * 1024;

/** Records of one topic for one request. */
export interface TopicRecords {
  readonly topic: string;
  readonly records: readonly ProduceRecord[];
}

/** Where a request's records landed, per topic and partition. */
export interface WrittenPartition extends ProducedPartition {
  readonly topic: string;
}

/** One connected idempotent (acks = all) producer of a client library. */
export interface RawProducer {
  /** One produce request (or as few as the library makes) for all of `topics`. */
  sendBatch(topics: readonly TopicRecords[]): Promise<WrittenPartition[]>;
  disconnect(): Promise<void>;
}

interface Pending {
  readonly topic: string;
  readonly batch: ProduceBatch;
  resolve(result: ProducedPartition[]): void;
  reject(error: unknown): void;
}

export class SerialProducer implements ProducerSeam {
  readonly #create: () => Promise<RawProducer>;
  readonly #logger: Logger;
  #producer: Promise<RawProducer> | undefined;
  readonly #queue: Pending[] = [];
  #running = false;
  #closed = false;
  /** Set by a failed send until the next turn of the event loop: new sends fail unsent. */
  #failed: unknown;

  /** `create` makes and connects a fresh library producer (a new producer id each time). */
  constructor(create: () => Promise<RawProducer>, logger: Logger) {
    this.#create = create;
    this.#logger = logger;
  }

  /** Connects the first producer (so a wrong address fails at connect time). */
  async connect(): Promise<void> {
    await this.#current();
  }

  #current(): Promise<RawProducer> {
    if (!this.#producer) {
      const connecting = this.#create();
      this.#producer = connecting;
      connecting.catch(() => {
        if (this.#producer === connecting) this.#producer = undefined;
      });
    }
    return this.#producer;
  }

  /** Drops the producer after an uncertain failure; the next send gets a fresh producer id. */
  #replace(failed: Promise<RawProducer>): void {
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
      let results: WrittenPartition[] = [];
      for (const chunk of chunks) {
        const topics = chunk === undefined ? mergeByTopic(batch) : [{ topic: only!.topic, records: chunk }];
        results = results.concat(await producer.sendBatch(topics));
      }
      for (const pending of batch) {
        const mine = results.filter((r) => r.topic === pending.topic);
        pending.resolve(batch.length === 1 && chunks.length === 1 ? mine.map(({ partition, baseOffset }) => ({ partition, baseOffset })) : []);
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

function mergeByTopic(batch: readonly Pending[]): TopicRecords[] {
  const byTopic = new Map<string, ProduceRecord[]>();
  for (const pending of batch) {
    const list = byTopic.get(pending.topic) ?? [];
    for (const record of pending.batch.records()) list.push(record);
    byTopic.set(pending.topic, list);
  }
  return [...byTopic].map(([topic, records]) => ({ topic, records }));
}
