/**
 * kafkajs' side of the serial idempotent producer (see serial-producer.ts for why serial): a
 * deterministic partitioner and one kafkajs `sendBatch` per request.
 */
import { type CompressionTypes, Partitioners, type Kafka, type Message, type ProducerConfig } from 'kafkajs';
import type { Logger } from '@mqkit/core/driver';
import { ID_HEADER } from '../records.ts';
import type { ProduceRecord } from './seam.ts';
import { SerialProducer } from './serial-producer.ts';

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

/** The serial producer over kafkajs idempotent producers (acks = -1). */
export class SerialIdempotentProducer extends SerialProducer {
  constructor(kafka: Kafka, config: ProducerConfig, compression: CompressionTypes, logger: Logger) {
    const producerConfig: ProducerConfig = { ...config, idempotent: true, createPartitioner: stablePartitioner };
    super(async () => {
      const producer = kafka.producer(producerConfig);
      await producer.connect();
      return {
        async sendBatch(topics) {
          const topicMessages = topics.map((t) => ({ topic: t.topic, messages: t.records.map(toKafkajsMessage) }));
          const written = await producer.sendBatch({ topicMessages, acks: -1, compression });
          return written.map((r) => ({ topic: r.topicName, partition: r.partition, baseOffset: r.baseOffset ?? r.offset ?? '-1' }));
        },
        disconnect: () => producer.disconnect(),
      };
    }, logger);
  }
}

/**
 * A seam record is already a kafkajs message (key, value, headers, timestamp), built for this send
 * by `toRecord` and never mutated by kafkajs (it only reads them while encoding): no copy.
 */
export function toKafkajsMessage(record: ProduceRecord): Message {
  return record;
}
