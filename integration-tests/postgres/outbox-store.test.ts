/**
 * @mqkit/postgres against the real PostgreSQL: the outbox store's claim rules (SKIP LOCKED,
 * leases, per-key order, retries), the relay's NOTIFY wake-up, metrics and cleanup, with the
 * in-memory broker as the destination (the crash tests with real brokers live in ../outbox/).
 */
import { connect, MqError, OutboxRelay, type Client } from '@mqkit/core';
import { migrate, migrationSql, postgresOutbox, PostgresOutboxStore, type SqlExecutor } from '@mqkit/postgres';
import { memory, memoryBroker } from '@mqkit/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueIdent, uniqueName } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';

const { url } = requireBroker('postgres');
let pool: pg.Pool;
const tables: string[] = [];
const closers: Array<() => Promise<unknown>> = [];

beforeAll(() => {
  pool = new pg.Pool({ connectionString: url, max: 8 });
  pool.on('error', () => {}); // a PostgreSQL restart by another suite must not crash the run
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => {});
  for (const t of tables) {
    await pool.query(`DROP TABLE IF EXISTS "${t}" CASCADE; DROP TABLE IF EXISTS "${t}_dedup"; DROP FUNCTION IF EXISTS "${t}_notify"()`).catch(() => {});
  }
  await pool.end();
});

async function freshTables(): Promise<{ table: string; dedupTable: string }> {
  const table = uniqueIdent('outbox');
  tables.push(table);
  const names = { table, dedupTable: `${table}_dedup` };
  await migrate(pool, names);
  return names;
}

async function memClient(): Promise<{ client: Client; broker: ReturnType<typeof memoryBroker> }> {
  const name = uniqueName('pgmem');
  const client = await connect(`memory://${name}`, { adapters: [memory()] });
  closers.push(() => client.close());
  return { client, broker: memoryBroker(name) };
}

/** Runs `fn` in a transaction on its own client; commits unless `rollback`. */
async function inTx(fn: (tx: pg.PoolClient) => Promise<void>, rollback = false): Promise<void> {
  const tx = await pool.connect();
  try {
    await tx.query('BEGIN');
    await fn(tx);
    await tx.query(rollback ? 'ROLLBACK' : 'COMMIT');
  } finally {
    tx.release();
  }
}

describe('migration', () => {
  it('is idempotent and creates both tables', async () => {
    const names = await freshTables();
    await migrate(pool, names);
    await Promise.all([migrate(pool, names), migrate(pool, names)]);
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM pg_tables WHERE tablename = ANY($1)`, [[names.table, names.dedupTable]]);
    expect(rows[0].n).toBe(2);
    expect(migrationSql(names)).toContain(`"${names.table}"`);
  });
});

describe('PostgresOutboxStore', () => {
  it('a committed transaction is published with id, key, headers, body and timestamp intact; a rolled-back one never', async () => {
    const names = await freshTables();
    const { client, broker } = await memClient();
    const box = postgresOutbox(client, { pool, ...names, relay: { pollIntervalMs: 200 } });
    closers.push(() => box.close());
    const topic = uniqueName('orders');
    let committedId = '';
    await inTx(async (tx) => {
      committedId = await box.outbox.enqueue(tx, topic, { n: 1 }, { key: 'k1', headers: { 'x-app': 'yes' } });
    });
    await inTx(async (tx) => {
      await box.outbox.enqueue(tx, topic, { n: 2 }, { key: 'k1' });
    }, true);
    await box.relay.relayOnce();
    const sent = broker.published(topic);
    expect(sent.map((e) => e.id)).toEqual([committedId]);
    const [e] = sent;
    expect(e!.key).toBe('k1');
    expect(e!.headers['x-app']).toBe('yes');
    expect(e!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(Buffer.from(e!.body).toString())).toEqual({ n: 1 });
    expect(Math.abs(e!.timestamp - Date.now())).toBeLessThan(60_000);
    expect(await box.relay.relayOnce()).toBe(0);
    expect((await box.store.metrics()).pending).toBe(0);
  });

  it('wakes on NOTIFY at commit (poll interval 60 s) and publishes within milliseconds', async () => {
    const names = await freshTables();
    const { client, broker } = await memClient();
    const box = postgresOutbox(client, { pool, ...names, relay: { pollIntervalMs: 60_000 } });
    closers.push(() => box.close());
    box.relay.start();
    await sleep(300); // the LISTEN connection is up
    const topic = uniqueName('notify');
    const latencies: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      await inTx(async (tx) => {
        await box.outbox.enqueue(tx, topic, { i });
      });
      const t0 = performance.now();
      await waitFor('relay publish', () => broker.published(topic).length === i + 1, { timeoutMs: 5_000, intervalMs: 2 });
      latencies.push(performance.now() - t0);
    }
    expect(Math.max(...latencies)).toBeLessThan(1_000);
  });

  it('claims in order, exclusively, and never past a key whose older row is claimed elsewhere or waiting for a retry', async () => {
    const names = await freshTables();
    const { client } = await memClient();
    const a = new PostgresOutboxStore(pool, { ...names, relayId: 'a', listen: false });
    const b = new PostgresOutboxStore(pool, { ...names, relayId: 'b', listen: false });
    const topic = uniqueName('claims');
    const plan = ['k1', 'k1', 'k2', 'k1', undefined, 'k3'];
    await inTx(async (tx) => {
      await a.enqueue(tx, plan.map((key, i) => client.prepare(topic, { i }, key ? { key } : {})));
    });
    const first = await a.claim(2, 30_000);
    expect(first.map((r) => JSON.parse(Buffer.from(r.envelope.body).toString()).i)).toEqual([0, 1]);
    const second = await b.claim(10, 30_000);
    // k1's third row (i=3) waits behind a's claim; k2, the keyless row and k3 go.
    expect(second.map((r) => JSON.parse(Buffer.from(r.envelope.body).toString()).i)).toEqual([2, 4, 5]);
    expect(await b.claim(10, 30_000)).toEqual([]);
    // a's first row fails: it is due again later and still blocks k1; the second was published.
    await a.markFailed(first[0]!, new MqError('CONNECTION', 'down'), new Date(Date.now() + 60_000));
    await a.markPublished([first[1]!]);
    expect(await b.claim(10, 30_000)).toEqual([]);
    const m = await a.metrics();
    expect(m).toMatchObject({ pending: 5, failing: 1, claimed: 3 });
    expect(m.oldestPendingAgeMs).toBeGreaterThanOrEqual(0);
  });

  it('maxPerKey limits each key to its first rows per claim (for adapters that send batches concurrently)', async () => {
    const names = await freshTables();
    const { client } = await memClient();
    const store = new PostgresOutboxStore(pool, { ...names, listen: false, maxPerKey: 1 });
    const topic = uniqueName('perkey');
    const plan = ['k1', 'k1', 'k2', undefined, 'k1', 'k2', undefined];
    await inTx(async (tx) => {
      await store.enqueue(tx, plan.map((key, i) => client.prepare(topic, { i }, key ? { key } : {})));
    });
    const first = await store.claim(100, 30_000);
    expect(first.map((r) => JSON.parse(Buffer.from(r.envelope.body).toString()).i)).toEqual([0, 2, 3, 6]);
    await store.markPublished(first);
    const second = await store.claim(100, 30_000);
    expect(second.map((r) => JSON.parse(Buffer.from(r.envelope.body).toString()).i)).toEqual([1, 5]);
  });

  it('a lease that lapses (relay died) makes the rows claimable again, attempts counted on failure', async () => {
    const names = await freshTables();
    const { client } = await memClient();
    const a = new PostgresOutboxStore(pool, { ...names, listen: false });
    const topic = uniqueName('lease');
    await inTx(async (tx) => {
      await a.enqueue(tx, [client.prepare(topic, 'x', { key: 'k' }), client.prepare(topic, 'y', { key: 'k' })]);
    });
    expect(await a.claim(10, 300)).toHaveLength(2);
    expect(await a.claim(10, 300)).toHaveLength(0);
    await sleep(400);
    const again = await a.claim(10, 30_000);
    expect(again).toHaveLength(2);
    await a.markFailed(again[0]!, new MqError('TIMEOUT', 't'), new Date(Date.now() - 1));
    const retried = await a.claim(10, 30_000);
    expect(retried.map((r) => r.attempts)).toEqual([1]);
  });

  it('failed publishes are retried with backoff, visible in metrics meanwhile', async () => {
    const names = await freshTables();
    const name = uniqueName('pgfail');
    const client = await connect(`memory://${name}`, { adapters: [memory()], publish: { timeoutMs: 1 } });
    closers.push(() => client.close());
    const store = new PostgresOutboxStore(pool, { ...names, listen: false });
    const relay = new OutboxRelay(store, client, { backoff: { initialDelayMs: 300, maxDelayMs: 300 } });
    const topic = uniqueName('retry');
    await inTx(async (tx) => {
      await store.enqueue(tx, [client.prepare(topic, 1)]);
    });
    memoryBroker(name).injectSendFailures(new MqError('REJECTED', 'policy says no'));
    expect(await relay.relayOnce()).toBe(0);
    expect(await store.metrics()).toMatchObject({ pending: 1, failing: 1 });
    expect(await relay.relayOnce()).toBe(0); // not due yet
    await sleep(500);
    expect(await relay.relayOnce()).toBe(1);
    expect(memoryBroker(name).published(topic)).toHaveLength(1);
    const { rows } = await pool.query(`SELECT attempts, last_error FROM "${names.table}"`);
    expect(rows[0]).toMatchObject({ attempts: 1 });
    expect(rows[0].last_error).toContain('REJECTED');
  });

  it('keeps published rows for the retention, then cleanup deletes them; delete mode removes at once', async () => {
    const names = await freshTables();
    const { client } = await memClient();
    const store = new PostgresOutboxStore(pool, { ...names, listen: false, retentionMs: 200 });
    const relay = new OutboxRelay(store, client);
    const topic = uniqueName('cleanup');
    await inTx(async (tx) => {
      await store.enqueue(tx, [client.prepare(topic, 1), client.prepare(topic, 2)]);
    });
    expect(await relay.relayOnce()).toBe(2);
    expect((await store.metrics()).retained).toBe(2);
    expect(await store.cleanup()).toBe(0);
    await sleep(300);
    await store.maintain(); // what the relay calls every maintenanceIntervalMs
    expect((await store.metrics()).retained).toBe(0);
    expect(await store.stats()).toEqual({ pending: 0, failing: 0, oldestPendingAgeMs: 0 });

    const deleting = new PostgresOutboxStore(pool, { ...names, listen: false, onPublished: 'delete' });
    await inTx(async (tx) => {
      await deleting.enqueue(tx, [client.prepare(topic, 3)]);
    });
    expect(await new OutboxRelay(deleting, client).relayOnce()).toBe(1);
    expect(await deleting.metrics()).toMatchObject({ pending: 0, retained: 0 });
  });

  it('works with any executor bound to the transaction (query-builder wrapper shape)', async () => {
    const names = await freshTables();
    const { client, broker } = await memClient();
    const store = new PostgresOutboxStore(pool, { ...names, listen: false });
    const topic = uniqueName('exec');
    await inTx(async (tx) => {
      // What a Kysely/Drizzle wrapper looks like: a query(text, values) over the ORM's transaction.
      const executor: SqlExecutor = { query: (text, values) => tx.query(text, values) };
      await store.enqueue(executor, [client.prepare(topic, 'via-executor')]);
    });
    await new OutboxRelay(store, client).relayOnce();
    expect(broker.published(topic)).toHaveLength(1);
  });
});
