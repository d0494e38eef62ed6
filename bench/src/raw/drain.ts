/**
 * The raw clients' side of the backlog-drain RSS rows (src/mqkit/rss.ts): each drains the same kind
 * of pre-filled backlog the mqkit row drains, the careful way (ack after the handler), in the same
 * fresh-process harness (src/mqkit/rss-child.ts), so that the growth a new Node process shows
 * anyway (V8 sizing its heap, the client's own buffers) is measured beside mqkit's.
 */
import amqp from 'amqplib';
import { Kafka, logLevel } from 'kafkajs';
import { Redis } from 'ioredis';
import type { BenchBroker, BenchEndpoints } from '../types.ts';

/** A connected raw consumer: `run` drains until `n` handler calls, calling `onMessage` after each. */
export interface RawDrain {
  run(onMessage: () => void): Promise<void>;
  close(): Promise<void>;
}

/** Where the mqkit fill put the backlog, and the raw consumer's own group (it reads from the start). */
export interface RawDrainTarget {
  topic: string;
  group: string;
  n: number;
}

type Openers = { [B in BenchBroker]?: (endpoint: BenchEndpoints[B], t: RawDrainTarget) => Promise<RawDrain> };

// like mqkit's bench handlers: count, nothing else (async: awaited per message)
const handler = async (): Promise<void> => {};

export const rawDrains: Openers = {
  /** XREADGROUP COUNT 100 BLOCK 1000 from a fresh group at 0, handler awaited per entry, one XACK per read pipelined ahead of the next. */
  async redis(endpoint, t) {
    const redis = new Redis(endpoint.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    await redis.xgroup('CREATE', t.topic, t.group, '0');
    return {
      async run(onMessage) {
        let got = 0;
        let ack: Promise<unknown> = Promise.resolve();
        while (got < t.n) {
          const r = (await redis.xreadgroupBuffer('GROUP', t.group, 'c1', 'COUNT', 100, 'BLOCK', 1000, 'STREAMS', t.topic, '>')) as
            | Array<[Buffer, Array<[Buffer, Buffer[]]>]>
            | null;
          const ids: Buffer[] = [];
          for (const [id] of r?.[0]?.[1] ?? []) {
            await handler();
            ids.push(id);
            got += 1;
            onMessage();
          }
          if (ids.length) ack = redis.xack(t.topic, t.group, ...ids);
        }
        await ack;
      },
      async close() {
        redis.disconnect();
      },
    };
  },
  /** eachBatch, handler awaited per message, resolveOffset, commit after each batch (the `kafkajs consume eachBatch + handler` row). */
  async kafka(endpoint, t) {
    const kafka = new Kafka({ clientId: 'bench-rss-raw', brokers: endpoint.brokers.split(','), logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: t.group, maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic: t.topic, fromBeginning: true });
    return {
      run(onMessage) {
        let got = 0;
        return new Promise<void>((resolve, reject) => {
          consumer
            .run({
              autoCommit: false,
              eachBatchAutoResolve: false,
              partitionsConsumedConcurrently: 3,
              // eslint-disable-next-line @typescript-eslint/unbound-method -- kafkajs hands closures (its documented destructuring), typed as methods
              async eachBatch({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, uncommittedOffsets, isRunning, isStale }) {
                for (const message of batch.messages) {
                  if (!isRunning() || isStale()) break;
                  await handler();
                  resolveOffset(message.offset);
                  got += 1;
                  onMessage();
                }
                await commitOffsetsIfNecessary(uncommittedOffsets());
                await heartbeat();
                if (got >= t.n) resolve();
              },
            })
            .catch(reject);
        });
      },
      close: () => consumer.disconnect(),
    };
  },
  /** prefetch 500 on mqkit's group queue, ack each. */
  async rabbitmq(endpoint, t) {
    const conn = await amqp.connect(endpoint.url);
    const ch = await conn.createChannel();
    await ch.prefetch(500);
    return {
      run(onMessage) {
        let got = 0;
        return new Promise<void>((resolve, reject) => {
          ch.on('error', reject);
          ch.consume(`${t.topic}.${t.group}`, (m) => {
            if (!m) return reject(new Error('consumer cancelled by the server'));
            void handler().then(() => {
              ch.ack(m);
              got += 1;
              onMessage();
              if (got === t.n) resolve();
            });
          }).catch(reject);
        });
      },
      async close() {
        await conn.close().catch(() => {});
      },
    };
  },
};
