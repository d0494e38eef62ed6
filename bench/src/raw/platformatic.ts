/**
 * Raw @platformatic/kafka 2.12 rows, used carefully, beside the kafkajs ones (same guarantees):
 * - `platformatic publish batched + id headers`: sequential send() of 500 messages, idempotent
 *   producer, acks -1, each message with mqkit's headers (id, content type) and a timestamp: the
 *   baseline of the mqkit-on-platformatic publish rows.
 * - `platformatic consume + handler`: a consumer group member with autocommit off and
 *   read_committed; every message awaited through an async handler, its position committed only
 *   after it (one commit of every partition's position per 500 handled messages, and at the end):
 *   the baseline of `mqkit consume (platformatic)`. Records carry mqkit's headers.
 */
import { randomUUID } from 'node:crypto';
import { Admin, Consumer, FetchIsolationLevels, MessagesStreamModes, ProduceAcks, Producer } from '@platformatic/kafka';
import { type BenchContext, defineScenario, now } from '../types.ts';
import { RAW_CONSUME_HANDLER } from './kafka.ts';

type Ctx = BenchContext<'kafka'>;

const PARTITIONS = 3;
const BATCH = 500;
export const RAW_PLATFORMATIC_PUBLISH = 'platformatic publish batched + id headers';
export const RAW_PLATFORMATIC_CONSUME = 'platformatic consume + handler';

interface State {
  admin: Admin;
  producer: Producer<string, Buffer, string, string>;
  topic: string;
  brokers: string[];
}

function base(ctx: Ctx) {
  return { clientId: ctx.name('bench-plt'), bootstrapBrokers: ctx.endpoint.brokers.split(',').map((s) => s.trim()), retries: 15 };
}

async function setup(ctx: Ctx): Promise<State> {
  const admin = new Admin(base(ctx));
  const topic = ctx.name('bench-plt-kafka');
  await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 });
  const producer = new Producer<string, Buffer, string, string>({
    ...base(ctx),
    idempotent: true,
    acks: ProduceAcks.ALL,
    serializers: { key: (k) => (k === undefined ? undefined : Buffer.from(k)), headerKey: (k) => (k === undefined ? undefined : Buffer.from(k)), headerValue: (v) => (v === undefined ? undefined : Buffer.from(v)) },
  });
  // warm the connection and metadata outside the clock (retried: the topic's leader may be new)
  for (let attempt = 0; ; attempt += 1) {
    try {
      await producer.send({ messages: [{ topic, key: 'warmup', value: Buffer.from('x') }] });
      break;
    } catch (err) {
      if (attempt >= 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { admin, producer, topic, brokers: base(ctx).bootstrapBrokers };
}

async function teardown(_ctx: Ctx, s: State): Promise<void> {
  await s.producer.close();
  await s.admin.deleteTopics({ topics: [s.topic] }).catch(() => {});
  await s.admin.close();
}

async function produceWithHeaders(ctx: Ctx, s: State): Promise<void> {
  for (let sent = 0; sent < ctx.n; sent += BATCH) {
    const k = Math.min(BATCH, ctx.n - sent);
    const result = await s.producer.send({
      messages: Array.from({ length: k }, (_, j) => ({
        topic: s.topic,
        key: `k${(sent + j) % 64}`,
        value: ctx.payload,
        headers: { 'content-type': 'application/octet-stream', 'x-mqkit-id': randomUUID() },
        timestamp: BigInt(Date.now()),
      })),
    });
    if (!result.offsets?.length) throw new Error('produce returned no offsets');
  }
}

/** The committed positions of `groupId` on the topic, summed: how many messages they cover. */
async function committedCount(s: State, groupId: string): Promise<number> {
  const [group] = await s.admin.listConsumerGroupOffsets({ groups: [groupId] });
  const partitions = group?.topics.find((t) => t.name === s.topic)?.partitions ?? [];
  return partitions.reduce((a, p) => a + Math.max(0, Number(p.committedOffset)), 0);
}

export const platformaticScenarios = [
  defineScenario<'kafka', State>({
    broker: 'kafka',
    name: RAW_PLATFORMATIC_PUBLISH,
    kind: 'publish',
    client: '@platformatic/kafka',
    description: `sequential send() of ${BATCH}, acks -1, idempotent producer, each message with x-mqkit-id + content-type headers`,
    baseline: 'kafkajs publish batched + id headers',
    setup,
    async run(ctx, s) {
      const t = now();
      await produceWithHeaders(ctx, s);
      return { count: ctx.n, ms: now() - t };
    },
    teardown,
  }),
  defineScenario<'kafka', State>({
    broker: 'kafka',
    name: RAW_PLATFORMATIC_CONSUME,
    kind: 'consume',
    client: '@platformatic/kafka',
    description: `group member, autocommit off, read_committed; await an async handler per message, commit every partition's position after each ${BATCH} handled and at the end (clock from group join)`,
    baseline: RAW_CONSUME_HANDLER,
    async setup(ctx) {
      const s = await setup(ctx);
      await produceWithHeaders(ctx, s);
      return s;
    },
    async run(ctx, s) {
      const want = ctx.n + 1; // + the warm-up message
      const groupId = ctx.name('bench-plt-group');
      const consumer = new Consumer({ ...base(ctx), groupId, autocommit: false, isolationLevel: FetchIsolationLevels.READ_COMMITTED, maxWaitTime: 100 });
      const stream = await consumer.consume({ topics: [s.topic], mode: MessagesStreamModes.COMMITTED, fallbackMode: 'earliest', autocommit: false, maxWaitTime: 100 });
      // consume() resolves once the group is joined: the join is not consumption
      const t0 = now();
      let got = 0;
      const positions = new Map<number, bigint>();
      const commit = () =>
        consumer.commit({ offsets: [...positions].map(([partition, offset]) => ({ topic: s.topic, partition, offset, leaderEpoch: -1 })) });
      // like mqkit's bench handler: count, nothing else
      const handler = async (): Promise<void> => {
        got += 1;
      };
      const timer = setTimeout(() => void stream.close(), 120_000);
      try {
        for await (const message of stream) {
          await handler();
          positions.set(message.partition, message.offset + 1n);
          if (got % BATCH === 0 || got >= want) await commit();
          if (got >= want) break;
        }
      } finally {
        clearTimeout(timer);
      }
      const t1 = now();
      await stream.close().catch(() => {});
      await consumer.close(true);
      if (got < want) throw new Error(`consumed only ${got}/${want} in 120 s`);
      // the commits really covered every message
      const committed = await committedCount(s, groupId);
      if (committed !== want) throw new Error(`committed offsets cover ${committed} messages, expected ${want}`);
      return { count: got - 1, ms: t1 - t0 };
    },
    teardown,
  }),
];
