/**
 * mqkit rows for Kafka, beside the raw kafkajs rows of the same run (same guarantees: acks -1,
 * idempotent producer, commit after handling):
 * - `mqkit publish`: client.publish() for every message at once; core coalesces them into driver
 *   batches of 500 (one produce request each), each publish resolving on its own acknowledgement.
 *   Baseline: `kafkajs publish batched` (sequential 500-message sends).
 * - `mqkit publish 1000 in flight`: 1,000 concurrent callers, each awaiting its publish() before
 *   the next: how a busy service publishes. Keeps the in-flight set (and the heap) bounded, where
 *   the row above holds all n publishes and their promises at once.
 * - `mqkit publishBatch 500`: sequential client.publishBatch() of 500, the raw row's exact shape.
 * - `mqkit consume`: subscribe() with 64 handlers, per-message ack, contiguous commits.
 *   Baseline: `kafkajs consume eachBatch + handler` (each message awaited through an async
 *   handler, resolved after it, committed after each batch: the same guarantee, raw).
 * - `kafkajs publish batched + id headers`: the raw batched row with what mqkit puts on the wire
 *   for every message (its id and content type as headers, a timestamp): the same guarantees as
 *   mqkit (the id travels natively), so the fair baseline for the mqkit publish rows.
 * The four mqkit rows run twice: on kafkajs (the names above) and on @platformatic/kafka (the same
 * names + ` (platformatic)`, baselines the raw platformatic rows of src/raw/platformatic.ts).
 * Registered in src/registry.ts.
 */
import { randomUUID } from 'node:crypto';
import { bytesCodec, connect } from '@mqkit/core';
import { kafka } from '@mqkit/kafka';
import type { Admin, Producer } from 'kafkajs';
import { createTopic, kafkaClient, PUBLISH_WINDOW as WINDOW, RAW_CONSUME_HANDLER } from '../raw/kafka.ts';
import { RAW_PLATFORMATIC_CONSUME, RAW_PLATFORMATIC_PUBLISH } from '../raw/platformatic.ts';
import { type BenchContext, deferred, defineScenario, now, pool } from '../types.ts';
import type { MqkitState } from './state.ts';

type Ctx = BenchContext<'kafka'>;

const BATCH = 500;
const CONCURRENCY = 64;

type State = MqkitState;

type KafkaClientName = 'kafkajs' | 'platformatic';

async function setup(ctx: Ctx, library: KafkaClientName): Promise<State> {
  const client = await connect(`kafka://${ctx.endpoint.brokers}?clientId=${ctx.name('bench-mqkit')}&client=${library}`, { adapters: [kafka()] });
  const topic = ctx.name('bench-mqkit-kafka');
  const native = client.native as { declareTopics(specs: Array<{ topic: string; numPartitions: number; replicationFactor: number }>): Promise<void> };
  await native.declareTopics([{ topic, numPartitions: 3, replicationFactor: 1 }]);
  const body = new Uint8Array(ctx.payload);
  // warm the connection and metadata outside the clock
  await client.publish(topic, body, { codec: bytesCodec, key: 'warmup' });
  return { client, topic, body };
}

async function publishAll(ctx: Ctx, s: State): Promise<void> {
  await Promise.all(Array.from({ length: ctx.n }, (_, i) => s.client.publish(s.topic, s.body, { codec: bytesCodec, key: `k${i % 64}` })));
}

/** `window` concurrent publishers, each awaiting its publish() before the next: a busy service. */
async function publishWindowed(ctx: Ctx, s: State, window: number): Promise<void> {
  await pool(ctx.n, window, (i) => s.client.publish(s.topic, s.body, { codec: bytesCodec, key: `k${i % 64}` }));
}

async function publishBatches(ctx: Ctx, s: State): Promise<void> {
  for (let sent = 0; sent < ctx.n; sent += BATCH) {
    const k = Math.min(BATCH, ctx.n - sent);
    const outcomes = await s.client.publishBatch(
      Array.from({ length: k }, (_, j) => ({ topic: s.topic, payload: s.body, codec: bytesCodec, key: `k${(sent + j) % 64}` })),
    );
    const failed = outcomes.find((o) => !o.ok);
    if (failed && !failed.ok) throw failed.error;
  }
}

async function teardown(_ctx: Ctx, s: State): Promise<void> {
  await s.subscription?.close({ timeoutMs: 1_000 });
  await s.client.close({ timeoutMs: 1_000 });
}

interface RawState {
  admin: Admin;
  producer: Producer;
  topic: string;
}

const RAW_WITH_HEADERS = 'kafkajs publish batched + id headers';

const rawWithHeaders = [
  defineScenario<'kafka', RawState>({
    broker: 'kafka',
    name: RAW_WITH_HEADERS,
    kind: 'publish',
    client: 'kafkajs',
    description: `sequential send() of ${BATCH}, acks -1, idempotent, each message with x-mqkit-id + content-type headers`,
    baseline: 'kafkajs publish batched',
    async setup(ctx) {
      const client = kafkaClient(ctx);
      const admin = client.admin();
      await admin.connect();
      const topic = ctx.name('bench-kafka-hdr');
      await createTopic(admin, topic);
      const producer = client.producer({ idempotent: true, maxInFlightRequests: 5 });
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: [{ key: 'warmup', value: 'x' }] });
      return { admin, producer, topic };
    },
    async run(ctx, s) {
      const t = now();
      for (let sent = 0; sent < ctx.n; sent += BATCH) {
        const k = Math.min(BATCH, ctx.n - sent);
        await s.producer.send({
          topic: s.topic,
          acks: -1,
          messages: Array.from({ length: k }, (_, j) => ({
            key: `k${(sent + j) % 64}`,
            value: ctx.payload,
            headers: { 'content-type': 'application/octet-stream', 'x-mqkit-id': randomUUID() },
            timestamp: String(Date.now()),
          })),
        });
      }
      return { count: ctx.n, ms: now() - t };
    },
    async teardown(_ctx, s) {
      await s.producer.disconnect();
      await s.admin.deleteTopics({ topics: [s.topic] }).catch(() => {});
      await s.admin.disconnect();
    },
  }),
];

/** The mqkit rows on one client library (kafkajs: the names without suffix). */
function mqkitRows(library: KafkaClientName) {
  const suffix = library === 'kafkajs' ? '' : ` (${library})`;
  const publishBaseline = library === 'kafkajs' ? RAW_WITH_HEADERS : RAW_PLATFORMATIC_PUBLISH;
  const consumeBaseline = library === 'kafkajs' ? RAW_CONSUME_HANDLER : RAW_PLATFORMATIC_CONSUME;
  return [
    defineScenario<'kafka', State>({
      broker: 'kafka',
      name: `mqkit publish${suffix}`,
      kind: 'publish',
      client: 'mqkit',
      description: `client.publish() × n at once (core batches of ${BATCH}), acks -1, idempotent`,
      baseline: publishBaseline,
      setup: (ctx) => setup(ctx, library),
      async run(ctx, s) {
        const t = now();
        await publishAll(ctx, s);
        return { count: ctx.n, ms: now() - t };
      },
      teardown,
    }),
    defineScenario<'kafka', State>({
      broker: 'kafka',
      name: `mqkit publish ${WINDOW} in flight${suffix}`,
      kind: 'publish',
      client: 'mqkit',
      description: `${WINDOW} concurrent callers, each awaiting client.publish() before its next (core batches of ${BATCH}), acks -1, idempotent`,
      baseline: publishBaseline,
      setup: (ctx) => setup(ctx, library),
      async run(ctx, s) {
        const t = now();
        await publishWindowed(ctx, s, WINDOW);
        return { count: ctx.n, ms: now() - t };
      },
      teardown,
    }),
    defineScenario<'kafka', State>({
      broker: 'kafka',
      name: `mqkit publishBatch 500${suffix}`,
      kind: 'publish',
      client: 'mqkit',
      description: `sequential client.publishBatch() of ${BATCH}, acks -1, idempotent`,
      baseline: publishBaseline,
      setup: (ctx) => setup(ctx, library),
      async run(ctx, s) {
        const t = now();
        await publishBatches(ctx, s);
        return { count: ctx.n, ms: now() - t };
      },
      teardown,
    }),
    defineScenario<'kafka', State>({
      broker: 'kafka',
      name: `mqkit consume${suffix}`,
      kind: 'consume',
      client: 'mqkit',
      description: `subscribe(), ${CONCURRENCY} handlers, ack each, contiguous commits (clock from group join)`,
      baseline: consumeBaseline,
      async setup(ctx) {
        const s = await setup(ctx, library);
        await publishBatches(ctx, s);
        return s;
      },
      async run(ctx, s) {
        const want = ctx.n + 1; // + the warm-up message
        let got = 0;
        let t1 = 0;
        let tFirst = 0;
        const done = deferred();
        const timer = setTimeout(() => done.reject(new Error(`consumed only ${got}/${want} in 120 s`)), 120_000);
        // subscribe() resolves once the group is joined; the join is not consumption
        const t0 = now();
        s.subscription = await s.client.subscribe(s.topic, {
          group: ctx.name('bench-mqkit-group'),
          codec: bytesCodec,
          concurrency: CONCURRENCY,
          handler: () => {
            got += 1;
            if (got === 1) tFirst = now();
            if (got >= want && !t1) {
              t1 = now();
              done.resolve();
            }
          },
        });
        const tJoined = now();
        try {
          await done.promise;
        } finally {
          clearTimeout(timer);
        }
        if (process.env.MQKIT_BENCH_DEBUG) ctx.log(`join +${(tJoined - t0).toFixed(0)} ms, first +${(tFirst - t0).toFixed(0)} ms, done +${(t1 - t0).toFixed(0)} ms`);
        return { count: got - 1, ms: t1 - tJoined };
      },
      teardown,
    }),
  ];
}

export const mqkitKafkaScenarios = [...rawWithHeaders, ...mqkitRows('kafkajs'), ...mqkitRows('platformatic')];
