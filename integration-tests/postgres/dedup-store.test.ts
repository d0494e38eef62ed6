/**
 * The Postgres dedup store against the real PostgreSQL: the processed mark committed with the
 * business write (exactly-once effects), concurrent deliveries of one message, the DedupStore
 * lease protocol, and exactlyOnce() as a handler on the in-memory broker.
 */
import { connect, idempotent } from '@mqkit/core';
import { dedupKey, exactlyOnce, migrate, PostgresDedupStore } from '@mqkit/postgres';
import { memory } from '@mqkit/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueIdent, uniqueName } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';

const { url } = requireBroker('postgres');
let pool: pg.Pool;
const table = uniqueIdent('outbox');
const dedupTable = `${table}_dedup`;
const effects = `${table}_effects`;
let store: PostgresDedupStore;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: url, max: 8 });
  pool.on('error', () => {}); // a PostgreSQL restart by another suite must not crash the run
  await migrate(pool, { table, dedupTable });
  await pool.query(`CREATE TABLE "${effects}" (id text NOT NULL, n int NOT NULL)`);
  store = new PostgresDedupStore(pool, { dedupTable });
});

afterAll(async () => {
  await pool.query(`DROP TABLE IF EXISTS "${table}", "${dedupTable}", "${effects}"; DROP FUNCTION IF EXISTS "${table}_notify"()`).catch(() => {});
  await pool.end();
});

async function effectCount(id: string): Promise<number> {
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${effects}" WHERE id = $1`, [id]);
  return rows[0].n;
}

describe('PostgresDedupStore.markProcessed', () => {
  it('is true once; a rolled-back mark leaves the key unprocessed', async () => {
    const key = dedupKey('g', uniqueName('m'));
    const tx = await pool.connect();
    await tx.query('BEGIN');
    expect(await store.markProcessed(tx, key)).toBe(true);
    await tx.query('ROLLBACK');
    await tx.query('BEGIN');
    expect(await store.markProcessed(tx, key)).toBe(true);
    await tx.query('COMMIT');
    await tx.query('BEGIN');
    expect(await store.markProcessed(tx, key)).toBe(false);
    await tx.query('ROLLBACK');
    tx.release();
    expect(await store.isProcessed(key)).toBe(true);
  });

  it('two concurrent transactions for one message: exactly one commits the effect', async () => {
    const id = uniqueName('m');
    const run = async (): Promise<boolean> => {
      const tx = await pool.connect();
      try {
        await tx.query('BEGIN');
        await tx.query(`INSERT INTO "${effects}" (id, n) VALUES ($1, 1)`, [id]);
        const fresh = await store.markProcessed(tx, dedupKey('g', id));
        await sleep(100); // both are inside their transaction at once
        await tx.query(fresh ? 'COMMIT' : 'ROLLBACK');
        return fresh;
      } finally {
        tx.release();
      }
    };
    const outcomes = await Promise.all([run(), run(), run()]);
    expect(outcomes.filter(Boolean)).toHaveLength(1);
    expect(await effectCount(id)).toBe(1);
  });

  it('an expired done mark can be taken again', async () => {
    const key = dedupKey('g', uniqueName('m'));
    expect(await store.markProcessed(pool, key, 100)).toBe(true);
    expect(await store.markProcessed(pool, key, 100)).toBe(false);
    await sleep(200);
    expect(await store.markProcessed(pool, key, 100)).toBe(true);
    expect(await store.purgeExpired()).toBeGreaterThanOrEqual(0);
  });
});

describe('PostgresDedupStore as a core DedupStore', () => {
  it('lease → busy → done → duplicate; a lapsed lease is taken over; release frees it', async () => {
    const key = uniqueName('k');
    expect(await store.begin(key, 10_000)).toBe('acquired');
    expect(await store.begin(key, 10_000)).toBe('busy');
    await store.release(key);
    expect(await store.begin(key, 150)).toBe('acquired');
    await sleep(250);
    expect(await store.begin(key, 10_000)).toBe('acquired');
    await store.complete(key, 60_000);
    expect(await store.begin(key, 10_000)).toBe('duplicate');
    await store.release(key); // a done mark is not a lease: kept
    expect(await store.begin(key, 10_000)).toBe('duplicate');
  });

  it('works as idempotent(store) middleware', async () => {
    const mq = await connect(`memory://${uniqueName('pgdedup')}`, { adapters: [memory()] });
    const topic = uniqueName('t');
    let runs = 0;
    const sub = await mq.subscribe(topic, { group: 'g', middleware: [idempotent(store)], handler: () => void (runs += 1) });
    const id = uniqueName('m');
    await mq.publish(topic, 1, { id });
    await mq.publish(topic, 1, { id });
    await waitFor('first run', () => runs === 1, { timeoutMs: 5_000 });
    await sleep(200);
    expect(runs).toBe(1);
    await sub.close();
    await mq.close();
  });
});

describe('exactlyOnce()', () => {
  it('commits the effect with the mark, skips redeliveries, and rolls back both when the handler throws', async () => {
    const mq = await connect(`memory://${uniqueName('pgexactly')}`, { adapters: [memory()] });
    const topic = uniqueName('t');
    let calls = 0;
    const sub = await mq.subscribe<{ n: number }>(topic, {
      group: 'billing',
      retry: { maxAttempts: 5, initialDelayMs: 10, maxDelayMs: 20 },
      handler: exactlyOnce(pool, store, async (m, tx) => {
        calls += 1;
        await tx.query(`INSERT INTO "${effects}" (id, n) VALUES ($1, $2)`, [m.id, m.payload.n]);
        if (m.payload.n === 2 && m.attempt === 1) throw new Error('first attempt fails after the write');
      }),
    });
    const a = uniqueName('a');
    const b = uniqueName('b');
    await mq.publish(topic, { n: 1 }, { id: a });
    await mq.publish(topic, { n: 1 }, { id: a }); // a duplicate copy
    await mq.publish(topic, { n: 2 }, { id: b });
    await waitFor('both effects', async () => (await effectCount(a)) === 1 && (await effectCount(b)) === 1, { timeoutMs: 10_000 });
    await sleep(200);
    expect(await effectCount(a)).toBe(1);
    expect(await effectCount(b)).toBe(1);
    expect(calls).toBe(3); // a once, b twice (the failed attempt rolled back)
    expect(await store.isProcessed(dedupKey('billing', a))).toBe(true);
    await sub.close();
    await mq.close();
  });
});
