/**
 * Raw ioredis 6 rows on Redis Streams: the baselines for `@mqkit/redis-streams`.
 * - publish naive: await each XADD.
 * - publish 64 in flight: 64 callers, each awaiting its XADD before the next (one connection, so
 *   ioredis writes them back to back: the pattern of concurrent publish() calls).
 * - publish pipeline 500: sequential `pipeline()` of 500 XADD, each reply checked (the shape of a
 *   driver batch written as one pipeline).
 * - consume xreadgroup 100 + xack: one consumer of a fresh consumer group, XREADGROUP COUNT 100
 *   BLOCK 1000 from `>`, an async handler awaited per message, then one XACK of the batch's ids
 *   sent without waiting for its reply (pipelined ahead of the next XREADGROUP on the same
 *   connection); all acks confirmed before the clock stops; afterwards (untimed) the group must
 *   have nothing pending and have read the whole stream.
 * Entries are `XADD key * d <payload>`, no MAXLEN/MINID trimming (every row adds to a fresh key,
 * deleted in teardown). Payloads are read back as Buffers (binary-safe, no UTF-8 decoding).
 */
import { Redis } from 'ioredis';
import { type BenchContext, type BrokerSuite, defineScenario, now, pool } from '../types.ts';

type Ctx = BenchContext<'redis'>;

// 50,000: the pipelined rows move 20,000 in ~0.2 s, too short to see through the noise.
export const redisSuite: BrokerSuite<'redis'> = { broker: 'redis', defaults: { n: 50_000, size: 1024 } };

const IN_FLIGHT = 64;
const PIPELINE = 500;
const READ_COUNT = 100;
const BLOCK_MS = 1_000;
const GROUP = 'bench';
/** The raw consumer with mqkit's guarantee (ack after the handler): baseline of `mqkit consume`. */
export const RAW_REDIS_CONSUME = `ioredis consume xreadgroup ${READ_COUNT} + xack`;
/** The raw publish row of a driver batch's shape: baseline of the mqkit publish rows. */
export const RAW_REDIS_PIPELINE = `ioredis publish pipeline ${PIPELINE}`;

export interface State {
  redis: Redis;
  key: string;
}

/** The XADD field/value arguments of one entry: plain rows `d <payload>`; the `+ mqkit fields` rows more. */
export type Fields = (payload: Buffer) => Array<string | Buffer>;
/** Where a consumer finds the payload among an entry's fields. */
export type BodyOf = (fields: Buffer[]) => Buffer | undefined;
const plainFields: Fields = (payload) => ['d', payload];
const plainBody: BodyOf = (fields) => fields[1];

export function redisClient(ctx: Ctx): Redis {
  // maxRetriesPerRequest null would retry for ever; a bench wants a failure instead.
  return new Redis(ctx.endpoint.url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
}

export async function setup(ctx: Ctx): Promise<State> {
  const redis = redisClient(ctx);
  await redis.connect();
  await redis.ping();
  return { redis, key: ctx.name('bench-redis') };
}

export async function teardown(_ctx: Ctx, s: State): Promise<void> {
  await s.redis.del(s.key).catch(() => {});
  s.redis.disconnect();
}

const xadd = (s: State, payload: Buffer) => s.redis.xadd(s.key, '*', 'd', payload);

/** Sequential pipelines of `batch` XADD; any failed reply is an error. */
export async function xaddPipelined(redis: Redis, key: string, n: number, payload: Buffer, batch = PIPELINE, fields: Fields = plainFields): Promise<void> {
  for (let sent = 0; sent < n; sent += batch) {
    const k = Math.min(batch, n - sent);
    const p = redis.pipeline();
    for (let j = 0; j < k; j++) p.xadd(key, '*', ...fields(payload));
    const replies = (await p.exec()) ?? [];
    if (replies.length !== k) throw new Error(`pipeline of ${k} XADD answered ${replies.length} replies`);
    for (const [err] of replies) if (err) throw err;
  }
}

/**
 * Drains `key` through a fresh consumer group: XREADGROUP COUNT 100 BLOCK 1000, `await handler(m)`
 * per entry, then one XACK per batch, not awaited before the next read (same connection, so it
 * reaches Redis first). Returns once `n` were handled and every XACK was answered.
 */
export async function consumeAll(ctx: Ctx, s: State, bodyOf: BodyOf = plainBody): Promise<{ count: number; ms: number }> {
  await s.redis.xgroup('CREATE', s.key, GROUP, '0');
  // like mqkit's bench handlers: count, nothing else (async: awaited per message)
  let got = 0;
  let bytes = 0;
  const handler = async (fields: Buffer[] | null): Promise<void> => {
    got += 1;
    bytes += (fields && bodyOf(fields))?.length ?? 0;
  };
  const acks: Array<Promise<number>> = [];
  let empty = 0;
  const deadline = Date.now() + 120_000;
  const t = now();
  while (got < ctx.n) {
    if (Date.now() > deadline) throw new Error(`consumed only ${got}/${ctx.n} in 120 s`);
    const r = await s.redis.xreadgroupBuffer('GROUP', GROUP, 'c1', 'COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', s.key, '>');
    const entries = r?.[0]?.[1] ?? [];
    if (!entries.length) {
      if (++empty > 5) throw new Error(`stream ran dry after ${got}/${ctx.n}`);
      continue;
    }
    const ids: Buffer[] = [];
    for (const [id, fields] of entries) {
      await handler(fields);
      ids.push(id);
    }
    acks.push(s.redis.xack(s.key, GROUP, ...ids));
  }
  const acked = (await Promise.all(acks)).reduce((a, b) => a + b, 0);
  const ms = now() - t;
  if (acked !== ctx.n) throw new Error(`XACK acknowledged ${acked} of ${ctx.n}`);
  if (bytes !== ctx.n * ctx.size) throw new Error(`read ${bytes} payload bytes, expected ${ctx.n * ctx.size}`);
  // untimed: nothing pending, the whole stream read by the group
  const [pending] = (await s.redis.xpending(s.key, GROUP)) as [number, ...unknown[]];
  if (Number(pending) !== 0) throw new Error(`${pending} entries still pending after consuming`);
  return { count: got, ms };
}

export const redisScenarios = [
  defineScenario<'redis', State>({
    broker: 'redis',
    name: 'ioredis publish naive',
    kind: 'publish',
    client: 'ioredis',
    description: 'await each XADD (no trimming)',
    setup,
    async run(ctx, s) {
      const t = now();
      for (let i = 0; i < ctx.n; i++) await xadd(s, ctx.payload);
      return { count: ctx.n, ms: now() - t };
    },
    teardown,
  }),
  defineScenario<'redis', State>({
    broker: 'redis',
    name: `ioredis publish ${IN_FLIGHT} in flight`,
    kind: 'publish',
    client: 'ioredis',
    description: `${IN_FLIGHT} callers, each awaiting its XADD before the next, one connection (no trimming)`,
    baseline: 'ioredis publish naive',
    setup,
    async run(ctx, s) {
      const t = now();
      await pool(ctx.n, IN_FLIGHT, () => xadd(s, ctx.payload));
      return { count: ctx.n, ms: now() - t };
    },
    teardown,
  }),
  defineScenario<'redis', State>({
    broker: 'redis',
    name: RAW_REDIS_PIPELINE,
    kind: 'publish',
    client: 'ioredis',
    description: `sequential pipeline() of ${PIPELINE} XADD, every reply checked (no trimming)`,
    baseline: 'ioredis publish naive',
    setup,
    async run(ctx, s) {
      const t = now();
      await xaddPipelined(s.redis, s.key, ctx.n, ctx.payload);
      return { count: ctx.n, ms: now() - t };
    },
    teardown,
  }),
  defineScenario<'redis', State>({
    broker: 'redis',
    name: RAW_REDIS_CONSUME,
    kind: 'consume',
    client: 'ioredis',
    description: `one consumer of a fresh group: XREADGROUP COUNT ${READ_COUNT} BLOCK ${BLOCK_MS}, await an async handler per entry, XACK per batch pipelined ahead of the next read`,
    async setup(ctx) {
      const s = await setup(ctx);
      await xaddPipelined(s.redis, s.key, ctx.n, ctx.payload);
      return s;
    },
    run: (ctx, s) => consumeAll(ctx, s),
    teardown,
  }),
];
