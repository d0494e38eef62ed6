/**
 * `pnpm bench outbox` (see the bench README): the @mqkit/postgres outbox relay against real
 * brokers, on the real PostgreSQL.
 *
 * - **relay throughput**: `--n` rows (default 20,000) committed first (untimed), then one relay
 *   started and timed until every row is confirmed by the broker and marked (rows/s).
 * - **commit-to-publish latency under light load**: one message per transaction at `--rate`
 *   (default 200/s) for `--seconds` (default 5) with an idle relay; latency = broker confirmation
 *   (the relay's mark) minus the row's insert time, both on the database clock; also commit →
 *   consumer delivery end to end. Measured twice: woken by LISTEN/NOTIFY (mqkit default) and by
 *   polling every 1 s (NOTIFY off: the default of well-known outbox libraries).
 * `--relays N` runs N relay loops over the store (as N relay processes would; claims stay
 * exclusive and per-key order holds), overlapping one loop's broker round trip with another's.
 *
 * Imports the workspace packages by path until bench/package.json lists @mqkit/postgres, pg and
 * the adapters.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect, OutboxRelay, type Client } from '@mqkit/core';
import type { Adapter } from '@mqkit/core/driver';
import { kafka } from '@mqkit/kafka';
import { postgresOutbox, type PostgresOutbox, type SqlExecutor } from '@mqkit/postgres';
import { rabbitmq } from '@mqkit/rabbitmq';
import { sqs } from '@mqkit/sqs';
import { REPO_ROOT, resolveEndpoint } from '../endpoints.ts';
import { median } from '../stats.ts';
import { sleep } from '../types.ts';

const BROKERS = ['kafka', 'rabbitmq', 'sqs'] as const;
type Broker = (typeof BROKERS)[number];

function target(b: Broker): { url: string; adapter: Adapter; options?: Record<string, unknown> } {
  switch (b) {
    case 'kafka':
      return { url: `kafka://${resolveEndpoint('kafka').endpoint.brokers}?createTopics=true`, adapter: kafka() };
    case 'rabbitmq':
      return { url: resolveEndpoint('rabbitmq').endpoint.url, adapter: rabbitmq() };
    case 'sqs': {
      const e = resolveEndpoint('sqs').endpoint;
      const params = new URLSearchParams({ region: e.region, endpoint: e.endpoint, sns: 'false' });
      return { url: `sqs://?${params.toString()}`, adapter: sqs(), options: { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } } };
    }
  }
}

function pgUrl(): string {
  if (process.env.MQKIT_POSTGRES_URL) return process.env.MQKIT_POSTGRES_URL;
  const file = join(REPO_ROOT, '.mqkit', 'endpoints.json');
  const data = JSON.parse(readFileSync(file, 'utf8')) as { postgres?: { url: string } };
  if (!data.postgres) throw new Error('bench outbox: no postgres endpoint (pnpm brokers up postgres or MQKIT_POSTGRES_URL)');
  return data.postgres.url;
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
};

interface Setup {
  mq: Client;
  box: PostgresOutbox;
  table: string;
  /** `relays` relay loops over the one store (several relays are safe; claims are exclusive). */
  relays: Array<OutboxRelay<SqlExecutor>>;
}

let seq = 0;
async function setup(b: Broker, listen: boolean, batchSize: number, relays = 1): Promise<Setup> {
  const t = target(b);
  const mq = await connect(t.url, { adapters: [t.adapter], ...(t.options ? { options: t.options } : {}) });
  const table = `bench_outbox_${Date.now().toString(36)}_${process.pid}_${seq++}`;
  const box = postgresOutbox(mq, {
    url: pgUrl(),
    table,
    dedupTable: `${table}_dedup`,
    listen,
    onPublished: 'mark',
    relay: { batchSize, pollIntervalMs: 1_000 },
  });
  await box.migrate();
  const extra = Array.from({ length: relays - 1 }, () => new OutboxRelay(box.store, mq, { batchSize, pollIntervalMs: 1_000 }));
  return { mq, box, table, relays: [box.relay, ...extra] };
}

async function teardown(s: Setup): Promise<void> {
  await Promise.all(s.relays.map((r) => r.stop()));
  await s.box.pool
    .query(`DROP TABLE IF EXISTS "${s.table}", "${s.table}_dedup"; DROP FUNCTION IF EXISTS "${s.table}_notify"()`)
    .catch(() => {});
  await s.box.close().catch(() => {});
  await s.mq.close({ timeoutMs: 2_000 }).catch(() => {});
}

async function throughput(b: Broker, n: number, size: number, batchSize: number, relays: number): Promise<{ rate: number; ms: number }> {
  const s = await setup(b, true, batchSize, relays);
  try {
    const topic = `bench-outbox-${Date.now().toString(36)}-${seq++}`;
    const payload = Buffer.alloc(size, 7);
    // RabbitMQ refuses (mandatory) messages no queue takes: bind a group's queue first. It does
    // not consume, so the timed section measures the relay alone.
    if (b === 'rabbitmq') {
      const sub = await s.mq.subscribe(topic, { group: `bench-${seq++}`, handler: () => {} });
      await sub.close();
    }
    // Warm the producer (connection, topic metadata) outside the timed section.
    await s.mq.publish(topic, payload);
    const client = await s.box.pool.connect();
    try {
      for (let i = 0; i < n; i += 1000) {
        await client.query('BEGIN');
        const envelopes = Array.from({ length: Math.min(1000, n - i) }, (_, j) => s.mq.prepare(topic, payload, { key: `k${(i + j) % 64}` }));
        await s.box.store.enqueue(client, envelopes);
        await client.query('COMMIT');
      }
    } finally {
      client.release();
    }
    const t0 = performance.now();
    for (const r of s.relays) r.start();
    for (;;) {
      const m = await s.box.store.metrics();
      if (m.pending === 0) break;
      await sleep(20);
    }
    const ms = performance.now() - t0;
    return { rate: (n / ms) * 1000, ms };
  } finally {
    await teardown(s);
  }
}

interface Latency {
  count: number;
  publishP50: number;
  publishP99: number;
  publishMax: number;
  e2eP50: number;
  e2eP99: number;
}

async function latency(b: Broker, listen: boolean, rate: number, seconds: number, size: number, relays: number): Promise<Latency> {
  const s = await setup(b, listen, 500, relays);
  try {
    const topic = `bench-outbox-lat-${Date.now().toString(36)}-${seq++}`;
    const committedAt = new Map<string, number>();
    const e2e: number[] = [];
    const sub = await s.mq.subscribe(topic, {
      group: `bench-${seq++}`,
      concurrency: 32,
      handler: (m) => {
        const t = committedAt.get(m.id);
        if (t !== undefined) e2e.push(performance.now() - t);
      },
    });
    await sleep(b === 'kafka' ? 3_000 : 500);
    for (const r of s.relays) r.start();
    await sleep(500);
    const payload = Buffer.alloc(size, 7);
    const total = Math.round(rate * seconds);
    const interval = 1000 / rate;
    const start = performance.now();
    for (let i = 0; i < total; i += 1) {
      const due = start + i * interval;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      const client = await s.box.pool.connect();
      try {
        await client.query('BEGIN');
        const id = await s.box.outbox.enqueue(client, topic, payload, { key: `k${i % 16}` });
        await client.query('COMMIT');
        committedAt.set(id, performance.now());
      } finally {
        client.release();
      }
    }
    const deadline = Date.now() + 30_000;
    while (e2e.length < total && Date.now() < deadline) await sleep(50);
    await sub.close({ timeoutMs: 1_000 });
    const { rows } = await s.box.pool.query<{ ms: number }>(
      `SELECT EXTRACT(EPOCH FROM published_at - created_at) * 1000 AS ms FROM "${s.table}" WHERE published_at IS NOT NULL`,
    );
    const pub = rows.map((r) => Number(r.ms));
    return {
      count: pub.length,
      publishP50: pct(pub, 50),
      publishP99: pct(pub, 99),
      publishMax: Math.max(...pub),
      e2eP50: pct(e2e, 50),
      e2eP99: pct(e2e, 99),
    };
  } finally {
    await teardown(s);
  }
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      n: { type: 'string', default: '20000' },
      size: { type: 'string', default: '1024' },
      reps: { type: 'string', default: '3' },
      rate: { type: 'string', default: '200' },
      seconds: { type: 'string', default: '5' },
      batch: { type: 'string', default: '500' },
      relays: { type: 'string', default: '1' },
    },
  });
  const brokers = (positionals.length ? positionals : ['kafka', 'rabbitmq']) as Broker[];
  const bad = brokers.filter((b) => !(BROKERS as readonly string[]).includes(b));
  if (bad.length) {
    console.error(`bench outbox: unknown broker(s) ${bad.join(', ')} (known: ${BROKERS.join(', ')})`);
    return 2;
  }
  const n = Number(values.n);
  const size = Number(values.size);
  const reps = Number(values.reps);
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const batch = Number(values.batch);
  const relays = Number(values.relays);
  const results: Record<string, unknown> = { n, size, reps, rate, seconds, batch, relays, at: new Date().toISOString() };
  for (const b of brokers) {
    console.log(`\n== outbox → ${b}`);
    const runs: number[] = [];
    for (let r = 0; r < reps; r += 1) {
      const t = await throughput(b, n, size, batch, relays);
      runs.push(t.rate);
      console.log(`  throughput rep ${r + 1}: ${n} rows in ${t.ms.toFixed(0)} ms = ${t.rate.toFixed(0)} rows/s`);
    }
    const notify = await latency(b, true, rate, seconds, size, relays);
    const polling = await latency(b, false, rate, seconds, size, relays);
    const line = (name: string, l: Latency) =>
      `  ${name.padEnd(22)} n=${l.count}  commit→publish p50 ${l.publishP50.toFixed(1)} ms  p99 ${l.publishP99.toFixed(1)} ms  max ${l.publishMax.toFixed(1)} ms | commit→consume p50 ${l.e2eP50.toFixed(1)} ms  p99 ${l.e2eP99.toFixed(1)} ms`;
    console.log(`  relay throughput: median ${median(runs).toFixed(0)} rows/s (min ${Math.min(...runs).toFixed(0)}, max ${Math.max(...runs).toFixed(0)}) over ${reps} reps of ${n} rows, batch ${batch}, ${relays} relay loop(s)`);
    console.log(`  light load, ${rate} msg/s for ${seconds} s, one message per transaction:`);
    console.log(line('LISTEN/NOTIFY', notify));
    console.log(line('polling 1 s (no NOTIFY)', polling));
    results[b] = { throughput: { median: median(runs), runs }, notify, polling };
  }
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-outbox.json`);
  writeFileSync(file, JSON.stringify(results, null, 2));
  console.log(`\nresults: ${file}`);
  return 0;
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
