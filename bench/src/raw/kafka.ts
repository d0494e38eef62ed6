/** Raw kafkajs 2.2.4 rows: reliable publish (acks -1, idempotent) naive vs batched, and eachBatch consume. */
import { type Admin, Kafka, logLevel, type Producer } from 'kafkajs';
import { type BenchContext, type BrokerSuite, deferred, defineScenario, now } from '../types.ts';

type Ctx = BenchContext<'kafka'>;

export const kafkaSuite: BrokerSuite<'kafka'> = { broker: 'kafka', defaults: { n: 20_000, size: 1024 } };

const PARTITIONS = 3;
const BATCH = 500;

export function kafkaClient(ctx: Ctx): Kafka {
  return new Kafka({
    clientId: ctx.name('bench'),
    brokers: ctx.endpoint.brokers.split(',').map((s) => s.trim()),
    retry: { retries: 15 },
    logLevel: logLevel.NOTHING,
  });
}

export async function createTopic(admin: Admin, topic: string): Promise<void> {
  const ok = await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }] });
  if (!ok) throw new Error(`topic ${topic} already existed`);
}

const msg = (ctx: Ctx, i: number) => ({ key: `k${i % 64}`, value: ctx.payload });

/** acks -1 + idempotent, sequential sends of `batch` messages. */
export async function produce(ctx: Ctx, producer: Producer, topic: string, batch: number): Promise<number> {
  let sent = 0;
  while (sent < ctx.n) {
    const k = Math.min(batch, ctx.n - sent);
    const messages = Array.from({ length: k }, (_, j) => msg(ctx, sent + j));
    const meta = await producer.send({ topic, acks: -1, messages });
    for (const m of meta) if (m.errorCode !== 0) throw new Error(`produce error ${m.errorCode} on partition ${m.partition}`);
    sent += k;
  }
  return sent;
}

interface PubState {
  kafka: Kafka;
  admin: Admin;
  producer: Producer;
  topic: string;
}

async function pubSetup(ctx: Ctx): Promise<PubState> {
  const kafka = kafkaClient(ctx);
  const admin = kafka.admin();
  await admin.connect();
  const topic = ctx.name('bench-kafka');
  await createTopic(admin, topic);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
  await producer.connect();
  // warm the connection and metadata outside the clock
  await producer.send({ topic, acks: -1, messages: [{ key: 'warmup', value: 'x' }] });
  return { kafka, admin, producer, topic };
}

async function pubTeardown(_ctx: Ctx, s: PubState): Promise<void> {
  await s.producer.disconnect();
  await s.admin.deleteTopics({ topics: [s.topic] }).catch(() => {});
  await s.admin.disconnect();
}

export const kafkaScenarios = [
  defineScenario<'kafka', PubState>({
    broker: 'kafka',
    name: 'kafkajs publish naive',
    kind: 'publish',
    client: 'kafkajs',
    description: 'await each send() of 1 message, acks -1, idempotent producer',
    setup: pubSetup,
    async run(ctx, s) {
      const t = now();
      const count = await produce(ctx, s.producer, s.topic, 1);
      return { count, ms: now() - t };
    },
    teardown: pubTeardown,
  }),
  defineScenario<'kafka', PubState>({
    broker: 'kafka',
    name: 'kafkajs publish batched',
    kind: 'publish',
    client: 'kafkajs',
    description: `sequential send() of ${BATCH} messages, acks -1, idempotent producer`,
    baseline: 'kafkajs publish naive',
    setup: pubSetup,
    async run(ctx, s) {
      const t = now();
      const count = await produce(ctx, s.producer, s.topic, BATCH);
      return { count, ms: now() - t };
    },
    teardown: pubTeardown,
  }),
  defineScenario<'kafka', PubState>({
    broker: 'kafka',
    name: 'kafkajs consume eachBatch',
    kind: 'consume',
    client: 'kafkajs',
    description: 'eachBatch, commitOffsets(last+1) after each batch, autoCommit off (clock starts at group join)',
    async setup(ctx) {
      const s = await pubSetup(ctx);
      await produce(ctx, s.producer, s.topic, BATCH);
      return s;
    },
    async run(ctx, s) {
      const want = ctx.n + 1; // + the warm-up message
      const groupId = ctx.name('bench-kafka-group');
      const consumer = s.kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
      await consumer.connect();
      await consumer.subscribe({ topic: s.topic, fromBeginning: true });
      let got = 0;
      let t0 = 0;
      let t1 = 0;
      const { promise, resolve, reject } = deferred();
      // the clock starts once the group is joined: the join/rebalance delay is not consumption
      const tRun = now();
      let tJoin = 0;
      let tFirst = 0;
      consumer.on(consumer.events.GROUP_JOIN, () => {
        tJoin = now();
        t0 ||= tJoin;
      });
      consumer.on(consumer.events.CRASH, (e) => reject(e.payload.error));
      const timer = setTimeout(() => reject(new Error(`consumed only ${got}/${want} in 120 s`)), 120_000);
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
            t0 ||= now();
            tFirst ||= now();
            got += batch.messages.length;
            const last = batch.lastOffset();
            resolveOffset(last);
            // raw commitOffsets wants the next offset to read
            await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]);
            await heartbeat();
            if (got >= want && !t1) {
              t1 = now();
              resolve();
            }
          },
        })
        .catch(reject);
      try {
        await promise;
      } finally {
        clearTimeout(timer);
        await consumer.disconnect();
      }
      // the commits really covered every message
      const committed = (await s.admin.fetchOffsets({ groupId, topics: [s.topic] }))[0]!.partitions.reduce((a, p) => a + Number(p.offset), 0);
      if (committed !== want) throw new Error(`committed offsets cover ${committed} messages, expected ${want}`);
      if (process.env.MQKIT_BENCH_DEBUG) ctx.log(`join +${(tJoin - tRun).toFixed(0)} ms, first batch +${(tFirst - tRun).toFixed(0)} ms, done +${(t1 - tRun).toFixed(0)} ms`);
      return { count: got - 1, ms: t1 - t0 };
    },
    teardown: pubTeardown,
  }),
];
