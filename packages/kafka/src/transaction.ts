/**
 * Native Kafka transactions on one transactional producer. kafkajs allows one open transaction
 * per producer, so transactions of a client run one after another (a FIFO lock); the producer is
 * created on first use with a unique transactional id.
 */
import { MqError, type DriverTransaction, type Envelope } from '@mqkit/core/driver';
import type { KafkaClientSeam, TopicOffsets, TransactionalProducerSeam, TransactionSeam } from './client/seam.ts';
import { toRecord } from './records.ts';
import { groupByTopic } from './send.ts';

/** A driver transaction that can also commit consumer offsets (consume-transform-produce). */
export interface KafkaDriverTransaction extends DriverTransaction {
  /** Commits these consumer-group offsets (next offset to read) atomically with the messages. */
  sendOffsets(groupId: string, offsets: readonly TopicOffsets[]): Promise<void>;
}

export class TransactionRunner {
  readonly #seam: KafkaClientSeam;
  readonly #transactionalId: string;
  #producer: Promise<TransactionalProducerSeam> | undefined;
  #lock: Promise<void> = Promise.resolve();

  constructor(seam: KafkaClientSeam, transactionalId: string) {
    this.#seam = seam;
    this.#transactionalId = transactionalId;
  }

  async begin(): Promise<KafkaDriverTransaction> {
    let release!: () => void;
    const previous = this.#lock;
    this.#lock = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    let tx: TransactionSeam;
    try {
      this.#producer ??= this.#seam.transactionalProducer(this.#transactionalId).catch((err: unknown) => {
        this.#producer = undefined;
        throw err;
      });
      tx = await (await this.#producer).begin();
    } catch (err) {
      release();
      throw this.#seam.classify(err, { transactionalId: this.#transactionalId });
    }
    let finished = false;
    const finish = async (what: 'commit' | 'abort'): Promise<void> => {
      if (finished) throw new MqError('INVALID_MESSAGE', 'transaction already finished');
      finished = true;
      try {
        await (what === 'commit' ? tx.commit() : tx.abort());
      } catch (err) {
        // A failed commit leaves the outcome to the coordinator: not retryable from here.
        const e = this.#seam.classify(err, { transactional: true });
        throw new MqError(e.code, e.message, { cause: err, retryable: false, details: e.details });
      } finally {
        release();
      }
    };
    const open = (): void => {
      if (finished) throw new MqError('INVALID_MESSAGE', 'transaction already finished');
    };
    return {
      send: async (envelopes: readonly Envelope[]) => {
        open();
        try {
          await Promise.all([...groupByTopic(envelopes)].map(([topic, items]) => tx.send(topic, items.map((i) => toRecord(i.envelope)))));
        } catch (err) {
          throw this.#seam.classify(err, { transactional: true });
        }
      },
      sendOffsets: async (groupId, offsets) => {
        open();
        try {
          await tx.sendOffsets(groupId, offsets);
        } catch (err) {
          throw this.#seam.classify(err, { transactional: true });
        }
      },
      commit: () => finish('commit'),
      abort: () => finish('abort'),
    };
  }

  async close(): Promise<void> {
    const producer = this.#producer;
    this.#producer = undefined;
    if (producer) await (await producer.catch(() => undefined))?.disconnect();
  }
}
