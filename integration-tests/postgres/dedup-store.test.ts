/**
 * The Postgres dedup store against the real PostgreSQL: the processed mark committed with the
 * business write (exactly-once effects), concurrent deliveries of one message, the DedupStore
 * lease protocol, and exactlyOnce() as a handler on the in-memory broker.
 */
import { connect, idempotent, type BeginResult, type Delivery, type Settlement } from '@mqkit/core';
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
  const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${effects}" WHERE id = $1`, [id]);
  return rows[0]!.n;
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

/** The token of an acquired lease (fails the test when the key was not acquired). */
function tokenOf(result: BeginResult): string {
  expect(result.state).toBe('acquired');
  return (result as { token: string }).token;
}

/** A delivery for driving the middleware by hand, recording how it was settled. */
function fakeDelivery(id: string) {
  const calls: string[] = [];
  let settlement: Settlement | undefined;
  const d = {
    id,
    group: 'g',
    get settlement() {
      return settlement;
    },
    ack: async () => void (settlement = 'ack', calls.push('ack')),
    nack: async (o?: { delayMs?: number }) => void (settlement = 'nack', calls.push(`nack:${o?.delayMs ?? 0}`)),
  } as unknown as Delivery<unknown>;
  return { d, calls };
}

describe('PostgresDedupStore as a core DedupStore', () => {
  it('lease → busy → done → duplicate; a lapsed lease is taken over; release frees it', async () => {
    const key = uniqueName('k');
    const first = tokenOf(await store.begin(key, 10_000));
    expect(await store.begin(key, 10_000)).toEqual({ state: 'busy' });
    expect(await store.release(key, first)).toBe(true);
    tokenOf(await store.begin(key, 150));
    await sleep(250);
    const taken = tokenOf(await store.begin(key, 10_000));
    expect(await store.complete(key, taken, 60_000)).toBe(true);
    expect(await store.begin(key, 10_000)).toEqual({ state: 'duplicate' });
    expect(await store.release(key, taken)).toBe(false); // a done mark is not a lease: kept
    expect(await store.begin(key, 10_000)).toEqual({ state: 'duplicate' });
  });

  it('a stale holder cannot release, renew or complete over the lease a newer holder took', async () => {
    const key = uniqueName('k');
    const stale = tokenOf(await store.begin(key, 150));
    await sleep(250);
    expect(await store.renew(key, stale, 10_000)).toBe(false); // lapsed: not renewed
    const fresh = tokenOf(await store.begin(key, 600));
    expect(await store.release(key, stale)).toBe(false);
    expect(await store.renew(key, stale, 10_000)).toBe(false);
    expect(await store.complete(key, stale, 60_000)).toBe(false);
    expect((await store.begin(key, 10_000)).state).toBe('busy'); // still the fresh lease, no done mark
    expect(await store.isProcessed(key)).toBe(false);
    expect(await store.renew(key, fresh, 10_000)).toBe(true);
    await sleep(800); // past the lease begin took, within the renewed one
    expect((await store.begin(key, 10_000)).state).toBe('busy');
    expect(await store.complete(key, fresh, 60_000)).toBe(true);
    expect(await store.isProcessed(key)).toBe(true);
  });

  it('complete by a holder whose lease lapsed untaken writes the done mark', async () => {
    const key = uniqueName('k');
    const token = tokenOf(await store.begin(key, 100));
    await sleep(200);
    expect(await store.complete(key, token, 60_000)).toBe(true);
    expect((await store.begin(key, 10_000)).state).toBe('duplicate');
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

  it('with idempotent(store), a handler that nacks on its first delivery runs the effect on the redelivery, exactly once', async () => {
    const mq = await connect(`memory://${uniqueName('pgnack')}`, { adapters: [memory()] });
    const topic = uniqueName('t');
    const effects: string[] = [];
    const sub = await mq.subscribe(topic, {
      group: 'g',
      middleware: [idempotent(store, { busyRetryDelayMs: 20 })],
      handler: async (m) => {
        if (m.attempt === 1) return m.nack(); // not ready yet
        effects.push(m.id);
      },
    });
    const id = uniqueName('m');
    await mq.publish(topic, 1, { id });
    await waitFor('the effect on a redelivery', () => effects.length === 1, { timeoutMs: 5_000 });
    await mq.publish(topic, 1, { id }); // a later copy is a duplicate
    await sleep(300);
    expect(effects).toEqual([id]);
    expect(await store.isProcessed(`g:${id}`)).toBe(true);
    await sub.close();
    await mq.close();
  });

  it('with idempotent(store), a handler slower than leaseMs keeps its lease: a concurrent redelivery sees busy', async () => {
    const mw = idempotent(store, { leaseMs: 300 });
    const id = uniqueName('slow');
    let finish!: () => void;
    let runs = 0;
    const slow = mw(fakeDelivery(id).d, () => new Promise<void>((r) => { runs += 1; finish = r; }));
    await sleep(1_000); // more than three leases
    expect((await store.begin(`g:${id}`, 300)).state).toBe('busy');
    const concurrent = fakeDelivery(id);
    await mw(concurrent.d, async () => void (runs += 1));
    expect(concurrent.calls).toEqual(['nack:1000']);
    finish();
    await slow;
    expect(runs).toBe(1);
    expect(await store.isProcessed(`g:${id}`)).toBe(true);
  });
});

describe('PostgresDedupStore purge', () => {
  it('deletes expired rows by itself, in bounded batches, on a later write; live marks stay', async () => {
    const statements: Array<{ text: string; rowCount: number }> = [];
    const recording = {
      query: async (text: string, values?: unknown[]) => {
        const result = await pool.query(text, values);
        statements.push({ text, rowCount: result.rowCount ?? 0 });
        return result;
      },
    };
    const purging = new PostgresDedupStore(recording, { dedupTable, purgeIntervalMs: 50, purgeBatchSize: 100 });
    const tag = uniqueName('purge');
    await pool.query(
      `INSERT INTO "${dedupTable}" (key, state, expires_at) SELECT $1 || g, 'done', now() - interval '1 second' FROM generate_series(1, 450) g`,
      [`${tag}:old:`],
    );
    const live = `${tag}:live`;
    expect(await purging.markProcessed(pool, live)).toBe(true);
    const expired = async (): Promise<number> =>
      (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${dedupTable}" WHERE key LIKE $1`, [`${tag}:old:%`])).rows[0]!.n;
    expect(await expired()).toBe(450);
    await sleep(100);
    tokenOf(await purging.begin(`${tag}:trigger`, 10_000)); // a write after the interval starts a purge
    await waitFor('expired rows purged', async () => (await expired()) === 0, { timeoutMs: 10_000, intervalMs: 50 });
    const deletes = statements.filter((s) => /^\s*DELETE/i.test(s.text) && /LIMIT/i.test(s.text));
    expect(deletes.length).toBeGreaterThanOrEqual(5);
    for (const d of deletes) expect(d.rowCount).toBeLessThanOrEqual(100);
    expect(await purging.isProcessed(live)).toBe(true);
    expect((await purging.begin(`${tag}:trigger`, 10_000)).state).toBe('busy');
  });

  it('migrate() adds the token column to a dedup table created before leases were fenced', async () => {
    const oldTable = uniqueIdent('old_dedup');
    await pool.query(`CREATE TABLE "${oldTable}" (
      key text PRIMARY KEY, state text NOT NULL CHECK (state IN ('processing', 'done')),
      expires_at timestamptz NOT NULL, updated_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
    try {
      await pool.query(`INSERT INTO "${oldTable}" (key, state, expires_at) VALUES ('kept', 'done', now() + interval '1 hour')`);
      await migrate(pool, { table, dedupTable: oldTable });
      const old = new PostgresDedupStore(pool, { dedupTable: oldTable });
      expect(await old.isProcessed('kept')).toBe(true);
      const token = tokenOf(await old.begin('fresh', 10_000));
      expect(await old.complete('fresh', token, 60_000)).toBe(true);
      expect((await old.begin('fresh', 10_000)).state).toBe('duplicate');
    } finally {
      await pool.query(`DROP TABLE IF EXISTS "${oldTable}"`);
    }
  });

  it('rejects invalid options with CONFIG naming the field', () => {
    for (const [options, field] of [
      [{ ttlMs: '7d' }, 'ttlMs'],
      [{ purgeBatchSize: 0 }, 'purgeBatchSize'],
      [{ dedupTabel: 'x' }, 'dedupTabel'],
    ] as const) {
      let err: unknown;
      try {
        new PostgresDedupStore(pool, options as never);
      } catch (e) {
        err = e;
      }
      expect(err, field).toMatchObject({ name: 'MqError', code: 'CONFIG' });
      expect(String((err as Error).message)).toContain(field);
    }
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
  it('a handler that nacks on its first delivery: its write and the mark roll back, the redelivery commits the effect once', async () => {
    const mq = await connect(`memory://${uniqueName('pgexnack')}`, { adapters: [memory()] });
    const topic = uniqueName('t');
    let calls = 0;
    const sub = await mq.subscribe<{ n: number }>(topic, {
      group: 'billing',
      handler: exactlyOnce(pool, store, async (m, tx) => {
        calls += 1;
        await tx.query(`INSERT INTO "${effects}" (id, n) VALUES ($1, $2)`, [m.id, m.payload.n]);
        if (m.attempt === 1) await m.nack(); // not ready yet: hand it back
      }),
    });
    const id = uniqueName('n');
    await mq.publish(topic, { n: 1 }, { id });
    await waitFor('the effect', async () => (await effectCount(id)) === 1, { timeoutMs: 10_000 });
    await mq.publish(topic, { n: 1 }, { id }); // a later copy is a duplicate
    await sleep(300);
    expect(await effectCount(id)).toBe(1);
    expect(calls).toBe(2);
    expect(await store.isProcessed(dedupKey('billing', id))).toBe(true);
    await sub.close();
    await mq.close();
  });

  it('a handler that dead-letters: nothing commits (no mark, no write)', async () => {
    const mq = await connect(`memory://${uniqueName('pgexdlq')}`, { adapters: [memory()] });
    const topic = uniqueName('t');
    let dead = 0;
    const dlq = await mq.subscribe(`${topic}-dlq`, { group: 'ops', handler: () => void (dead += 1) });
    const sub = await mq.subscribe<{ n: number }>(topic, {
      group: 'billing',
      handler: exactlyOnce(pool, store, async (m, tx) => {
        await tx.query(`INSERT INTO "${effects}" (id, n) VALUES ($1, $2)`, [m.id, m.payload.n]);
        await m.deadLetter('invalid order');
      }),
    });
    const id = uniqueName('d');
    await mq.publish(topic, { n: 1 }, { id });
    await waitFor('the dead letter', () => dead === 1, { timeoutMs: 10_000 });
    await sleep(200);
    expect(await effectCount(id)).toBe(0);
    expect(await store.isProcessed(dedupKey('billing', id))).toBe(false);
    await sub.close();
    await dlq.close();
    await mq.close();
  });
});
