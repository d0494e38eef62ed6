/**
 * mqkit rows for Redis Streams (`@mqkit/redis-streams`), beside the raw ioredis rows of the same run:
 * - `ioredis publish pipeline 500 + mqkit fields` / `ioredis publish 64 in flight + mqkit fields`: the raw
 *   rows writing the entry the adapter writes for a `client.publish(topic, bytes)` (packages/redis-streams/
 *   src/codec.ts: `id` a fresh uuid, `timestamp` epoch ms, `content-type`, `body`), so that raw and mqkit pay
 *   for the same bytes (as kafka's `+ id headers` row). Baselines of the mqkit publish rows; their own
 *   ratio is against the plain raw row (what the fields cost).
 * - `ioredis consume xreadgroup 100 + xack + mqkit fields`: the raw consume row (XREADGROUP COUNT 100
 *   BLOCK 1000, an async handler awaited per entry, XACK per batch pipelined ahead of the next read) on
 *   entries in mqkit's format, the handler finding `body` by name. Baseline of `mqkit consume`.
 * - `mqkit publish`: client.publish() × n, all in flight; core coalesces them into driver batches (≤ 1,000,
 *   the adapter's maxBatchSize), each one pipeline of XADD on the one connection.
 * - `mqkit publish 64 in flight`: 64 callers, each awaiting its publish() before the next.
 * - `mqkit consume`: pre-filled through client.publish(); subscribe() on a fresh group (created outside the
 *   clock) with a counting handler, concurrency 100 (prefetch 100, so up to 200 held: two reads of COUNT
 *   100, the raw row's batch), timed until the n-th handler call and close() returned (close flushes the last
 *   XACK); then (untimed) XPENDING of the group must be 0.
 * Registered in src/registry.ts.
 */
import { randomUUID } from 'node:crypto';
import { bytesCodec, connect } from '@mqkit/core';
import { redisStreams } from '@mqkit/redis-streams';
import type { Redis } from 'ioredis';
import { type BodyOf, consumeAll, type Fields, RAW_REDIS_CONSUME, RAW_REDIS_PIPELINE, setup as rawSetup, teardown as rawTeardown, xaddPipelined } from '../raw/redis.ts';
import { type BenchContext, defineScenario, now, pool } from '../types.ts';
import type { MqkitState } from './state.ts';

type Ctx = BenchContext<'redis'>;

const GROUP = 'bench';
const IN_FLIGHT = 64;
const CONCURRENCY = 100;
const RAW_64 = `ioredis publish ${IN_FLIGHT} in flight`;
export const RAW_PIPELINE_FIELDS = `${RAW_REDIS_PIPELINE} + mqkit fields`;
export const RAW_64_FIELDS = `${RAW_64} + mqkit fields`;
export const RAW_CONSUME_FIELDS = `${RAW_REDIS_CONSUME} + mqkit fields`;

/** The fields @mqkit/redis-streams writes for `publish(topic, bytes, { codec: bytesCodec })` (no key, no other headers). */
export const mqkitFields: Fields = (payload) => ['id', randomUUID(), 'timestamp', String(Date.now()), 'content-type', 'application/octet-stream', 'body', payload];

/** The `body` field, found by name as a careful reader of mqkit's entries would. */
export const mqkitBody: BodyOf = (fields) => {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]!.length === 4 && fields[i]!.toString() === 'body') return fields[i + 1];
  return undefined;
};

type State = MqkitState;

async function setup(ctx: Ctx): Promise<State> {
  const client = await connect(ctx.endpoint.url, { adapters: [redisStreams()] });
  const topic = ctx.name('bench-mqkit-redis');
  // The group outside the clock (the adapter creates it from entry 0 on subscribe; an existing one is kept).
  await (client.native as Redis).xgroup('CREATE', topic, GROUP, '0', 'MKSTREAM');
  return { client, topic, body: new Uint8Array(ctx.payload) };
}

const publish = (s: State) => s.client.publish(s.topic, s.body, { codec: bytesCodec });

async function publishAll(s: State, n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, () => publish(s)));
}

async function teardown(_ctx: Ctx, s: State): Promise<void> {
  await s.subscription?.close({ timeoutMs: 1_000 }).catch(() => {});
  const redis = s.client.native as Redis;
  await redis.del(s.topic, `${s.topic}-dlq`, `mqkit:delay:${s.topic}`, `mqkit:delayed:${s.topic}`, `mqkit:parked:${s.topic}:${GROUP}`).catch(() => {});
  await s.client.close({ timeoutMs: 1_000 });
}

export const mqkitRedisScenarios = [
  defineScenario<'redis', Awaited<ReturnType<typeof rawSetup>>>({
    broker: 'redis',
    name: RAW_PIPELINE_FIELDS,
    kind: 'publish',
    client: 'ioredis',
    description: `${RAW_REDIS_PIPELINE} writing the fields mqkit writes (id uuid, timestamp, content-type, body)`,
    baseline: RAW_REDIS_PIPELINE,
    setup: rawSetup,
    async run(ctx, s) {
      const t = now();
      await xaddPipelined(s.redis, s.key, ctx.n, ctx.payload, undefined, mqkitFields);
      return { count: ctx.n, ms: now() - t };
    },
    teardown: rawTeardown,
  }),
  defineScenario<'redis', State>({
    broker: 'redis',
    name: 'mqkit publish',
    kind: 'publish',
    client: 'mqkit',
    description: 'client.publish() × n, all in flight (core batches ≤ 1,000 → one XADD pipeline per driver batch), no trimming',
    baseline: RAW_PIPELINE_FIELDS,
    setup,
    async run(ctx, s) {
      const t = now();
      await publishAll(s, ctx.n);
      return { count: ctx.n, ms: now() - t };
    },
    teardown,
  }),
  defineScenario<'redis', Awaited<ReturnType<typeof rawSetup>>>({
    broker: 'redis',
    name: RAW_64_FIELDS,
    kind: 'publish',
    client: 'ioredis',
    description: `${RAW_64} writing the fields mqkit writes (id uuid, timestamp, content-type, body)`,
    baseline: RAW_64,
    setup: rawSetup,
    async run(ctx, s) {
      const t = now();
      await pool(ctx.n, IN_FLIGHT, () => s.redis.xadd(s.key, '*', ...mqkitFields(ctx.payload)));
      return { count: ctx.n, ms: now() - t };
    },
    teardown: rawTeardown,
  }),
  defineScenario<'redis', State>({
    broker: 'redis',
    name: `mqkit publish ${IN_FLIGHT} in flight`,
    kind: 'publish',
    client: 'mqkit',
    description: `${IN_FLIGHT} callers, each awaiting its publish() before the next`,
    baseline: RAW_64_FIELDS,
    setup,
    async run(ctx, s) {
      const t = now();
      await pool(ctx.n, IN_FLIGHT, () => publish(s));
      return { count: ctx.n, ms: now() - t };
    },
    teardown,
  }),
  defineScenario<'redis', Awaited<ReturnType<typeof rawSetup>>>({
    broker: 'redis',
    name: RAW_CONSUME_FIELDS,
    kind: 'consume',
    client: 'ioredis',
    description: `${RAW_REDIS_CONSUME} on entries in mqkit's format (pre-filled with mqkit's fields), body found by field name`,
    baseline: RAW_REDIS_CONSUME,
    async setup(ctx) {
      const s = await rawSetup(ctx);
      await xaddPipelined(s.redis, s.key, ctx.n, ctx.payload, undefined, mqkitFields);
      return s;
    },
    run: (ctx, s) => consumeAll(ctx, s, mqkitBody),
    teardown: rawTeardown,
  }),
  defineScenario<'redis', State>({
    broker: 'redis',
    name: 'mqkit consume',
    kind: 'consume',
    client: 'mqkit',
    description: `subscribe() on a fresh group, concurrency ${CONCURRENCY} (prefetch ${CONCURRENCY}), counting handler, ack after it; until close() flushed the last XACK`,
    baseline: RAW_CONSUME_FIELDS,
    async setup(ctx) {
      const s = await setup(ctx);
      await publishAll(s, ctx.n);
      return s;
    },
    async run(ctx, s) {
      let got = 0;
      let bytes = 0;
      let done!: () => void;
      const finished = new Promise<void>((resolve) => (done = resolve));
      const t = now();
      s.subscription = await s.client.subscribe(s.topic, {
        group: GROUP,
        codec: bytesCodec,
        concurrency: CONCURRENCY,
        handler: (d) => {
          got += 1;
          bytes += d.payload.byteLength;
          if (got === ctx.n) done();
        },
      });
      await finished;
      // Until the last XACK left: close() waits for running handlers and flushes the settle batcher.
      await s.subscription.close();
      const ms = now() - t;
      s.subscription = undefined;
      if (bytes !== ctx.n * ctx.size) throw new Error(`read ${bytes} payload bytes, expected ${ctx.n * ctx.size}`);
      // Untimed: every ack reached Redis, none was lost to the close.
      const [pending] = (await (s.client.native as Redis).xpending(s.topic, GROUP)) as [number, ...unknown[]];
      if (Number(pending) !== 0) throw new Error(`${pending} entries still pending in ${s.topic}/${GROUP} after consuming`);
      return { count: got, ms };
    },
    teardown,
  }),
];
