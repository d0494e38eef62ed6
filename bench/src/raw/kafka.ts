/**
 * Raw kafkajs 2.2.4 rows: reliable publish (acks -1, idempotent) naive vs batched, and two eachBatch
 * consumers: one that does no per-message work (a ceiling), and one with the guarantee mqkit gives
 * (each message awaited through an async handler, offsets resolved and committed only after it).
 */
import { randomUUID } from 'node:crypto';
import { type Admin, type EachBatchPayload, Kafka, logLevel, type Producer, type RecordMetadata } from 'kafkajs';
import { type BenchContext, type BrokerSuite, deferred, defineScenario, now, pool } from '../types.ts';

type Ctx = BenchContext<'kafka'>;

export const kafkaSuite: BrokerSuite<'kafka'> = { broker: 'kafka', defaults: { n: 20_000, size: 1024 } };

const PARTITIONS = 3;
const BATCH = 500;
/** The raw consumer with mqkit's guarantee (at-least-once, commit only after the handler). */
export const RAW_CONSUME_HANDLER = 'kafkajs consume eachBatch + handler';

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

/** What mqkit puts on the wire for each message besides key and body: its id and content type. */
export const mqkitHeaders = (): Record<string, string> => ({ 'content-type': 'application/octet-stream', 'x-mqkit-id': randomUUID() });

function checkProduced(meta: RecordMetadata[]): void {
  for (const m of meta) if (m.errorCode !== 0) throw new Error(`produce error ${m.errorCode} on partition ${m.partition}`);
}

/**
 * acks -1 + idempotent, sequential sends of `batch` messages; `withHeaders` adds mqkit's headers
 * and timestamp to each (so a raw consumer decodes the same records as an mqkit one).
 */
export async function produce(ctx: Ctx, producer: Producer, topic: string, batch: number, withHeaders = false): Promise<number> {
  let sent = 0;
  while (sent < ctx.n) {
    const k = Math.min(batch, ctx.n - sent);
    const messages = Array.from({ length: k }, (_, j) =>
      withHeaders ? { ...msg(ctx, sent + j), headers: mqkitHeaders(), timestamp: String(Date.now()) } : msg(ctx, sent + j),
    );
    checkProduced(await producer.send({ topic, acks: -1, messages }));
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

/** Concurrent callers in the windowed publish rows (raw and mqkit alike). */
export const PUBLISH_WINDOW = 1_000;
export const RAW_CONCURRENT = `kafkajs publish ${PUBLISH_WINDOW} concurrent 1-message sends`;

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
    name: RAW_CONCURRENT,
    kind: 'publish',
    client: 'kafkajs',
    description: `${PUBLISH_WINDOW} concurrent callers, each awaiting send() of its 1 message (with mqkit's headers) before the next; acks -1, idempotent producer: the calling pattern of mqkit's publish() rows`,
    baseline: 'kafkajs publish naive',
    setup: pubSetup,
    async run(ctx, s) {
      const t = now();
      await pool(ctx.n, PUBLISH_WINDOW, async (i) => {
        checkProduced(await s.producer.send({ topic: s.topic, acks: -1, messages: [{ ...msg(ctx, i), headers: mqkitHeaders(), timestamp: String(Date.now()) }] }));
      });
      return { count: ctx.n, ms: now() - t };
    },
    teardown: pubTeardown,
  }),
  defineScenario<'kafka', PubState>({
    broker: 'kafka',
    name: 'kafkajs consume eachBatch',
    kind: 'consume',
    client: 'kafkajs',
    description: 'eachBatch, NO per-message work (no handler), commitOffsets(last+1) after each batch, autoCommit off (clock from group join)',
    async setup(ctx) {
      const s = await pubSetup(ctx);
      await produce(ctx, s.producer, s.topic, BATCH);
      return s;
    },
    run: (ctx, s) => consumeRaw(ctx, s, 'batch'),
    teardown: pubTeardown,
  }),
  defineScenario<'kafka', PubState>({
    broker: 'kafka',
    name: RAW_CONSUME_HANDLER,
    kind: 'consume',
    client: 'kafkajs',
    description: `eachBatch on ${PARTITIONS} partitions at once, await an async handler per message, resolveOffset after it, heartbeat, commit resolved offsets after each batch (autoCommit off); records carry mqkit's headers`,
    baseline: 'kafkajs consume eachBatch',
    async setup(ctx) {
      const s = await pubSetup(ctx);
      await produce(ctx, s.producer, s.topic, BATCH, true);
      return s;
    },
    run: (ctx, s) => consumeRaw(ctx, s, 'handler'),
    teardown: pubTeardown,
  }),
];

/**
 * Consumes the pre-filled topic with a fresh group until every message (+ the warm-up one) was seen.
 * - `batch`: no per-message work; commits last+1 after each batch (a ceiling, not a fair baseline).
 * - `handler`: what a careful user writes for at-least-once with an async handler: every message
 *   is awaited through `handler`, its offset resolved only after the handler resolved, a heartbeat
 *   every 500 messages (kafkajs sends it only when `heartbeatInterval` passed), and after the
 *   batch the resolved offsets are committed (`commitOffsetsIfNecessary(uncommittedOffsets())`, a
 *   no-op when nothing new is resolved). autoCommit stays off so that nothing is committed on a
 *   handler error or a stop mid-batch beyond what was resolved; `eachBatchAutoResolve: false` so
 *   that a batch left early (stop/rebalance) does not resolve its unprocessed tail.
 *   `partitionsConsumedConcurrently` = the partition count: mqkit's adapter hands batches to core
 *   without waiting, so every partition is processed at once there too.
 */
export async function consumeRaw(ctx: Ctx, s: PubState, mode: 'batch' | 'handler'): Promise<{ count: number; ms: number }> {
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
  const finished = () => {
    if (got >= want && !t1) {
      t1 = now();
      resolve();
    }
  };
  // like mqkit's bench handler: count, nothing else
  const handler = async (_m: EachBatchPayload['batch']['messages'][number]): Promise<void> => {
    got += 1;
    finished();
  };
  const eachBatch =
    mode === 'batch'
      ? // eslint-disable-next-line @typescript-eslint/unbound-method -- kafkajs hands closures (its documented destructuring), typed as methods
        async ({ batch, resolveOffset, heartbeat }: EachBatchPayload) => {
          t0 ||= now();
          tFirst ||= now();
          got += batch.messages.length;
          const last = batch.lastOffset();
          resolveOffset(last);
          // raw commitOffsets wants the next offset to read
          await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]);
          await heartbeat();
          finished();
        }
      : // eslint-disable-next-line @typescript-eslint/unbound-method -- as above
        async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, uncommittedOffsets, isRunning, isStale }: EachBatchPayload) => {
          t0 ||= now();
          tFirst ||= now();
          let i = 0;
          for (const message of batch.messages) {
            if (!isRunning() || isStale()) break;
            await handler(message);
            resolveOffset(message.offset);
            if (++i % 500 === 0) await heartbeat();
          }
          await commitOffsetsIfNecessary(uncommittedOffsets());
          await heartbeat();
        };
  consumer
    .run({ autoCommit: false, eachBatchAutoResolve: mode === 'batch', partitionsConsumedConcurrently: mode === 'batch' ? 1 : PARTITIONS, eachBatch })
    .catch(reject);
  try {
    await promise;
    if (mode === 'handler') await waitCommitted(s, groupId, want);
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  // the commits really covered every message
  const committed = await committedCount(s, groupId);
  if (committed !== want) throw new Error(`committed offsets cover ${committed} messages, expected ${want}`);
  if (process.env.MQKIT_BENCH_DEBUG) ctx.log(`join +${(tJoin - tRun).toFixed(0)} ms, first batch +${(tFirst - tRun).toFixed(0)} ms, done +${(t1 - tRun).toFixed(0)} ms`);
  return { count: got - 1, ms: t1 - t0 };
}

async function committedCount(s: PubState, groupId: string): Promise<number> {
  return (await s.admin.fetchOffsets({ groupId, topics: [s.topic] }))[0]!.partitions.reduce((a, p) => a + Math.max(0, Number(p.offset)), 0);
}

/** The handler row's last commit runs after its last handler call (outside the clock): wait for it. */
async function waitCommitted(s: PubState, groupId: string, want: number): Promise<void> {
  for (let i = 0; i < 100; i += 1) {
    if ((await committedCount(s, groupId)) >= want) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}
