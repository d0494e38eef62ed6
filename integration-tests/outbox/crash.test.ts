/**
 * The outbox and dedup guarantees under crashes, with real PostgreSQL and each real broker whose
 * adapter is available (see ./targets.ts):
 * 1. committed ⇒ published even when the relay is SIGKILLed mid-batch and restarted; rolled back
 *    ⇒ never published;
 * 2. two relays over 10,000 rows, one of them SIGKILLed and restarted midway: every row published
 *    at least once, duplicates absorbed by the idempotent consumer, per-key order preserved;
 * 3. a consumer SIGKILLed after its effect committed but before the ack: with the Postgres dedup
 *    mark in the effect's transaction, the effect happened exactly once.
 * Run: MQKIT_INTEGRATION_BROKERS=postgres,kafka,rabbitmq,sqs,rocketmq pnpm exec vitest run --config integration-tests/vitest.config.ts outbox
 * (MQKIT_OUTBOX_BROKERS=kafka,… narrows the brokers).
 */
import { connect, type Client, type Subscription } from '@mqkit/core';
import { dedupKey, exactlyOnce, migrate, PostgresDedupStore, PostgresOutboxStore } from '@mqkit/postgres';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueGroup, uniqueIdent } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';
import { outboxTargets } from './targets.ts';
import { startWorker, type Worker } from './workers/spawn.ts';

const pgUrl = requireBroker('postgres').url;
const targets = await outboxTargets();

describe('outbox crash tests', () => {
  it('has at least one real broker adapter to run against', () => {
    expect(targets.map((t) => t.name).length, 'no broker adapter available: set MQKIT_INTEGRATION_BROKERS=postgres,<broker>').toBeGreaterThan(0);
  });
});

for (const target of targets) {
  describe(`outbox crash tests on ${target.name}`, () => {
    let pool: pg.Pool;
    const table = uniqueIdent(`ob_${target.name}`);
    const dedupTable = `${table}_dedup`;
    const effects = `${table}_effects`;
    const seen = `${table}_seen`;
    const workers: Worker[] = [];
    const cleanups: Array<() => Promise<unknown>> = [];
    let store: PostgresOutboxStore;
    let dedup: PostgresDedupStore;

    const workerEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
      PG_URL: pgUrl,
      MQ_URL: target.url,
      MQ_ADAPTER: target.pkg,
      MQ_OPTIONS: JSON.stringify(target.options),
      OUTBOX_TABLE: table,
      DEDUP_TABLE: dedupTable,
      ...extra,
    });
    const relay = async (id: string): Promise<Worker> => {
      const w = await startWorker('./relay-worker.ts', workerEnv({ RELAY_ID: id, BATCH_SIZE: '100', LEASE_MS: '2000', MAX_PER_KEY: String(target.maxPerKey) }));
      workers.push(w);
      return w;
    };
    const client = async (): Promise<Client> => {
      const mq = await connect(target.url, { adapters: [target.adapter], options: target.options });
      cleanups.push(() => mq.close({ timeoutMs: 2_000 }));
      return mq;
    };
    const pendingOf = async (topic: string): Promise<number> =>
      (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${table}" WHERE topic = $1 AND published_at IS NULL`, [topic])).rows[0]!.n;

    beforeAll(async () => {
      pool = new pg.Pool({ connectionString: pgUrl, max: 12 });
      pool.on('error', () => {}); // a PostgreSQL restart by another suite must not crash the run
      await migrate(pool, { table, dedupTable });
      await pool.query(`CREATE TABLE "${effects}" (n bigserial PRIMARY KEY, id text NOT NULL, key text, seq int, order_no int)`);
      await pool.query(`CREATE TABLE "${seen}" (id text NOT NULL, attempt int, pid int, at timestamptz DEFAULT clock_timestamp())`);
      store = new PostgresOutboxStore(pool, { table, dedupTable, listen: false });
      dedup = new PostgresDedupStore(pool, { dedupTable });
    });

    afterEach(async () => {
      await Promise.all(workers.splice(0).map((w) => w.kill('SIGKILL')));
      for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
    });

    afterAll(async () => {
      await pool.query(`DROP TABLE IF EXISTS "${table}", "${dedupTable}", "${effects}", "${seen}"; DROP FUNCTION IF EXISTS "${table}_notify"()`).catch(() => {});
      await pool.end();
    });

    it('committed ⇒ published across a relay SIGKILLed mid-batch; rolled back ⇒ never', { timeout: 180_000 }, async () => {
      const mq = await client();
      const topic = await target.topic('ob-crash', false);
      const received = new Map<string, number>();
      const sub: Subscription = await mq.subscribe(topic, {
        group: uniqueGroup('ob-crash'),
        concurrency: 16,
        handler: (m) => void received.set(m.id, (received.get(m.id) ?? 0) + 1),
      });
      cleanups.push(() => sub.close({ timeoutMs: 1_000 }));
      await sleep(target.name === 'kafka' ? 3_000 : 500); // group joined

      const committed: string[] = [];
      const rolledBack: string[] = [];
      let writing = true;
      const writer = (async () => {
        for (let t = 0; writing || t < 60; t += 1) {
          if (t >= 150) break;
          const rollback = t % 10 === 9;
          const envelopes = Array.from({ length: 20 }, (_, i) => mq.prepare(topic, { t, i }, { key: `k${i % 7}` }));
          const tx = await pool.connect();
          try {
            await tx.query('BEGIN');
            await store.enqueue(tx, envelopes);
            await tx.query(rollback ? 'ROLLBACK' : 'COMMIT');
          } finally {
            tx.release();
          }
          (rollback ? rolledBack : committed).push(...envelopes.map((e) => e.id));
          await sleep(15);
        }
      })();

      // Kill relays until one dies holding claimed, unmarked rows (that is what mid-batch means).
      let stranded = 0;
      for (let round = 0; round < 8 && stranded === 0; round += 1) {
        const id = `crash-relay-${round}`;
        const victim = await relay(id);
        await waitFor('the relay holding a claim', async () =>
          (await pool.query(`SELECT 1 FROM "${table}" WHERE claimed_by = $1 AND published_at IS NULL AND claimed_until > now() LIMIT 1`, [id])).rowCount === 1,
          { timeoutMs: 30_000, intervalMs: 1 });
        await victim.kill('SIGKILL');
        expect((await victim.exited).signal).toBe('SIGKILL');
        stranded = (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${table}" WHERE claimed_by = $1 AND published_at IS NULL`, [id])).rows[0]!.n;
      }
      expect(stranded, 'a relay was killed while holding claimed rows').toBeGreaterThan(0);

      await relay('survivor');
      writing = false;
      await writer;
      await waitFor('the outbox drained', async () => (await pendingOf(topic)) === 0, { timeoutMs: 90_000 });
      await waitFor('every committed message consumed', () => committed.every((id) => received.has(id)), { timeoutMs: 60_000 });
      await sleep(1_000);
      expect(rolledBack.filter((id) => received.has(id))).toEqual([]);
      const duplicates = [...received.values()].reduce((a, n) => a + n - 1, 0);
      console.log(`[${target.name}] relay crash: ${committed.length} committed, ${rolledBack.length} rolled back, ${stranded} rows stranded by the kill, ${duplicates} duplicate deliveries`);
      expect(received.size).toBe(committed.length);
    });

    it('two relays over 10,000 rows, one SIGKILLed midway: all published, duplicates absorbed, per-key order kept', { timeout: 300_000 }, async () => {
      const mq = await client();
      const ordered = true;
      const topic = await target.topic('ob-two', ordered);
      const group = uniqueGroup('ob-two');
      let deliveries = 0;
      const apply = exactlyOnce<{ key: string; seq: number }>(pool, dedup, async (m, tx) => {
        await tx.query(`INSERT INTO "${effects}" (id, key, seq) VALUES ($1, $2, $3)`, [m.id, m.payload.key, m.payload.seq]);
      });
      const sub = await mq.subscribe<{ key: string; seq: number }>(topic, {
        group,
        ordered: true,
        concurrency: 32,
        handler: async (m) => {
          deliveries += 1;
          await apply(m);
        },
      });
      cleanups.push(() => sub.close({ timeoutMs: 2_000 }));
      await sleep(target.name === 'kafka' ? 3_000 : 500);

      const total = Number(process.env.MQKIT_OUTBOX_ROWS ?? 10_000);
      const keys = 50;
      const writers = 5;
      const a = await relay('relay-a');
      await relay('relay-b');
      // Each writer owns keys w, w+5, …: its transactions are sequential, so a key's seq order is
      // its commit order.
      const write = async (w: number): Promise<void> => {
        const mine = Array.from({ length: keys / writers }, (_, i) => `key-${w + i * writers}`);
        const next = new Map(mine.map((k) => [k, 0]));
        for (let done = 0; done < total / writers; ) {
          const envelopes = Array.from({ length: 20 }, (_, i) => {
            const key = mine[(done + i) % mine.length]!;
            const seq = next.get(key)!;
            next.set(key, seq + 1);
            return mq.prepare(topic, { key, seq }, { key });
          });
          const tx = await pool.connect();
          try {
            await tx.query('BEGIN');
            await store.enqueue(tx, envelopes);
            await tx.query('COMMIT');
          } finally {
            tx.release();
          }
          done += envelopes.length;
        }
      };
      const writing = Promise.all(Array.from({ length: writers }, (_, w) => write(w)));
      await waitFor('a third published', async () => {
        const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${table}" WHERE topic = $1 AND published_at IS NOT NULL`, [topic]);
        return rows[0]!.n > total / 3;
      }, { timeoutMs: 120_000, intervalMs: 20 });
      await a.kill('SIGKILL');
      await sleep(300);
      await relay('relay-a2');
      await writing;
      const t0 = Date.now();
      await waitFor('the outbox drained', async () => (await pendingOf(topic)) === 0, { timeoutMs: 120_000 });
      await waitFor(`${total} effects`, async () => (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${effects}" WHERE key IS NOT NULL`)).rows[0]!.n >= total, { timeoutMs: 180_000, intervalMs: 250 });
      // A relay that published but died before marking republishes its batch: force 300 such
      // rows (the kill above may or may not have hit that window) and watch the consumer absorb them.
      const before = deliveries;
      const forced = Math.min(300, total / 10);
      await pool.query(
        `UPDATE "${table}" SET published_at = NULL, claimed_until = NULL
         WHERE seq IN (SELECT seq FROM "${table}" WHERE topic = $1 ORDER BY random() LIMIT ${forced})`,
        [topic],
      );
      if (target.dropsDuplicates(ordered)) {
        // SQS FIFO drops a re-sent id within 5 minutes: the broker absorbs these, not the consumer.
        await waitFor('the republished rows sent', async () => (await pendingOf(topic)) === 0, { timeoutMs: 60_000 });
        await sleep(3_000);
      } else {
        await waitFor('the republished rows delivered', () => deliveries >= before + forced, { timeoutMs: 60_000 });
      }
      await sleep(1_500);
      const { rows } = await pool.query<{ id: string; key: string; seq: number }>(`SELECT id, key, seq FROM "${effects}" WHERE key IS NOT NULL ORDER BY n`);
      expect(rows).toHaveLength(total);
      expect(new Set(rows.map((r) => r.id)).size).toBe(total);
      const last = new Map<string, number>();
      const outOfOrder: string[] = [];
      for (const r of rows) {
        const prev = last.get(r.key) ?? -1;
        if (r.seq !== prev + 1) outOfOrder.push(`${r.key}: ${prev} then ${r.seq}`);
        last.set(r.key, r.seq);
      }
      expect(outOfOrder.slice(0, 10)).toEqual([]);
      if (!target.dropsDuplicates(ordered)) expect(deliveries - total).toBeGreaterThanOrEqual(forced);
      expect([...last.values()].every((s) => s === total / keys - 1)).toBe(true);
      console.log(`[${target.name}] two relays: ${total} rows, ${deliveries} deliveries (${deliveries - total} duplicates absorbed), drained ${Date.now() - t0} ms after the last commit`);
    });

    it('consumer SIGKILLed after its effect committed, before the ack: the effect happened exactly once', { timeout: 180_000 }, async () => {
      const mq = await client();
      const topic = await target.topic('ob-consumer', false);
      const group = uniqueGroup('ob-consumer');
      const consumerEnv = (crashOn?: string) =>
        workerEnv({ TOPIC: topic, GROUP: group, EFFECTS_TABLE: effects, SEEN_TABLE: seen, ...(crashOn ? { CRASH_ON_ID: crashOn } : {}) });
      const ids = Array.from({ length: 20 }, (_, i) => `order-${topic.replace(/\W/g, '-')}-${i}`);
      const crashId = ids[4]!;
      const first = await startWorker('./consumer-worker.ts', consumerEnv(crashId));
      workers.push(first);
      await sleep(target.name === 'kafka' ? 3_000 : 500);
      for (const [i, id] of ids.entries()) await mq.publish(topic, { order: i }, { id });
      const exit = await Promise.race([first.exited, sleep(60_000).then(() => undefined)]);
      expect(exit?.signal, first.output.join('\n')).toBe('SIGKILL');
      const count = async (id: string): Promise<number> =>
        (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${effects}" WHERE id = $1`, [id])).rows[0]!.n;
      expect(await count(crashId)).toBe(1); // committed before the crash

      const second = await startWorker('./consumer-worker.ts', consumerEnv());
      workers.push(second);
      await waitFor('all 20 effects', async () => {
        const { rows } = await pool.query<{ n: number }>(`SELECT count(DISTINCT id)::int AS n FROM "${effects}" WHERE id = ANY($1)`, [ids]);
        return rows[0]!.n === 20;
      }, { timeoutMs: 120_000, intervalMs: 250 }).catch(async (err: unknown) => {
        const { rows } = await pool.query(`SELECT id, attempt, pid FROM "${seen}" WHERE id = ANY($1) ORDER BY at`, [ids]);
        throw new Error(`${(err as Error).message}\nseen: ${JSON.stringify(rows)}\nfirst: ${first.output.join('\n')}\nsecond: ${second.output.join('\n')}`);
      });
      await waitFor('the crashed message redelivered', async () =>
        (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${seen}" WHERE id = $1`, [crashId])).rows[0]!.n >= 2, { timeoutMs: 60_000 });
      await sleep(1_000);
      for (const id of ids) expect(await count(id), id).toBe(1);
      expect(await dedup.isProcessed(dedupKey(group, crashId))).toBe(true);
      const seenRows = (await pool.query(`SELECT attempt, pid FROM "${seen}" WHERE id = $1 ORDER BY at`, [crashId])).rows;
      console.log(`[${target.name}] consumer crash: deliveries of the crashed message ${JSON.stringify(seenRows)}; effect rows 1`);
    });
  });
}
