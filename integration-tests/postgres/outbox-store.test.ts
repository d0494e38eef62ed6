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
    await pool
      .query(`DROP TABLE IF EXISTS "${t}" CASCADE; DROP TABLE IF EXISTS "${t}_dead"; DROP TABLE IF EXISTS "${t}_dedup"; DROP FUNCTION IF EXISTS "${t}_notify"()`)
      .catch(() => {});
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

function bodyOf(e: { body: Uint8Array }): { i: number } & Record<string, unknown> {
  return JSON.parse(Buffer.from(e.body).toString()) as { i: number } & Record<string, unknown>;
}

async function memClient(publishTimeoutMs?: number): Promise<{ client: Client; broker: ReturnType<typeof memoryBroker> }> {
  const name = uniqueName('pgmem');
  const client = await connect(`memory://${name}`, { adapters: [memory()], ...(publishTimeoutMs ? { publish: { timeoutMs: publishTimeoutMs } } : {}) });
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
    const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_tables WHERE tablename = ANY($1)`, [[names.table, names.dedupTable]]);
    expect(rows[0]!.n).toBe(2);
    expect(migrationSql(names)).toContain(`"${names.table}"`);
  });

  it('upgrades an outbox table made by the previous schema (claim_token column, dead table) and keeps its rows', async () => {
    const table = uniqueIdent('outbox_old');
    tables.push(table);
    // The outbox table as the first release created it.
    await pool.query(`CREATE TABLE "${table}" (
      seq bigserial PRIMARY KEY, id text NOT NULL, topic text NOT NULL, key text,
      headers jsonb NOT NULL DEFAULT '{}'::jsonb, body bytea NOT NULL, message_ts bigint NOT NULL,
      delay_ms integer, created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      available_at timestamptz NOT NULL DEFAULT '-infinity', attempts integer NOT NULL DEFAULT 0,
      claimed_until timestamptz, claimed_by text, last_error text, published_at timestamptz)`);
    const { client, broker } = await memClient();
    const topic = uniqueName('upgrade');
    const e = client.prepare(topic, { old: true }, { key: 'k' });
    await pool.query(`INSERT INTO "${table}" (id, topic, key, headers, body, message_ts) VALUES ($1, $2, $3, $4, $5, $6)`, [
      e.id, e.topic, e.key, JSON.stringify(e.headers), Buffer.from(e.body), e.timestamp,
    ]);
    await migrate(pool, { table, dedupTable: `${table}_dedup` });
    const store = new PostgresOutboxStore(pool, { table, dedupTable: `${table}_dedup`, listen: false });
    expect(await new OutboxRelay(store, client).relayOnce()).toBe(1);
    expect(broker.published(topic).map((x) => x.id)).toEqual([e.id]);
    expect(await store.listDead()).toEqual([]);
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
    expect(first.map((r) => (JSON.parse(Buffer.from(r.envelope.body).toString()) as { i: number }).i)).toEqual([0, 1]);
    const second = await b.claim(10, 30_000);
    // k1's third row (i=3) waits behind a's claim; k2, the keyless row and k3 go.
    expect(second.map((r) => (JSON.parse(Buffer.from(r.envelope.body).toString()) as { i: number }).i)).toEqual([2, 4, 5]);
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
    expect(first.map((r) => (JSON.parse(Buffer.from(r.envelope.body).toString()) as { i: number }).i)).toEqual([0, 2, 3, 6]);
    await store.markPublished(first);
    const second = await store.claim(100, 30_000);
    expect(second.map((r) => (JSON.parse(Buffer.from(r.envelope.body).toString()) as { i: number }).i)).toEqual([1, 5]);
  });

  // A row whose publish kills its relay (a crashing payload, an OOM) used to be claimed again after
  // every lease, for ever, with its whole batch: its failure was never marked, so never counted.
  it('a lease that lapses (relay died) counts an attempt; the suspects go out alone, and a row that kills every relay is dead after maxAttempts', async () => {
    const names = await freshTables();
    const { client, broker } = await memClient();
    const a = new PostgresOutboxStore(pool, { ...names, listen: false });
    const topic = uniqueName('lease');
    await inTx(async (tx) => {
      await a.enqueue(tx, [client.prepare(topic, 'x', { key: 'k' }), client.prepare(topic, 'y', { key: 'k' }), client.prepare(topic, 'z')]);
    });
    const first = await a.claim(10, 300);
    expect(first.map((r) => [r.attempts, r.lapsed])).toEqual([[1, false], [1, false], [1, false]]);
    expect(await a.claim(10, 300)).toHaveLength(0);
    // The relay dies twice more, each time on x, claimed alone (y waits behind it, z too).
    for (const attempts of [2, 3]) {
      await sleep(400);
      const again = await a.claim(10, 300);
      expect(again.map((r) => [r.seq, r.attempts, r.lapsed])).toEqual([[first[0]!.seq, attempts, true]]);
    }
    expect(await a.metrics()).toMatchObject({ pending: 3, failing: 2 });
    await sleep(400);
    const relay = new OutboxRelay(a, client, { maxAttempts: 3, leaseMs: 60_000 });
    expect(await relay.relayOnce()).toBe(0); // x, claimed a 4th time: dead, not published again
    const dead = await a.listDead();
    expect(dead.map((d) => [d.seq, d.attempts])).toEqual([[first[0]!.seq, 4]]);
    expect(dead[0]!.lastError).toMatch(/died or hung/);
    expect(await relay.relayOnce()).toBe(1); // y: a suspect of the first death only
    expect(await relay.relayOnce()).toBe(1); // z
    expect(broker.published(topic).map((e) => bodyOf(e as never) as unknown)).toEqual(['y', 'z']);
    const { rows } = await pool.query<{ seq: string; attempts: number }>(`SELECT seq, attempts FROM "${names.table}" ORDER BY seq`);
    expect(rows.map((r) => r.attempts)).toEqual([2, 2]);
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
    const { rows } = await pool.query<{ attempts: number; last_error: string | null }>(`SELECT attempts, last_error FROM "${names.table}"`);
    expect(rows[0]).toMatchObject({ attempts: 2 }); // two claims: the failed one and the published one
    expect(rows[0]!.last_error).toContain('REJECTED');
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
    expect(await store.stats()).toEqual({ pending: 0, failing: 0, oldestPendingAgeMs: 0, dead: 0 });

    const deleting = new PostgresOutboxStore(pool, { ...names, listen: false, onPublished: 'delete' });
    await inTx(async (tx) => {
      await deleting.enqueue(tx, [client.prepare(topic, 3)]);
    });
    expect(await new OutboxRelay(deleting, client).relayOnce()).toBe(1);
    expect(await deleting.metrics()).toMatchObject({ pending: 0, retained: 0 });
  });

  it('a failing row holds back the later rows of its key: a retry is claimed alone for its key', async () => {
    const names = await freshTables();
    const { client } = await memClient();
    const store = new PostgresOutboxStore(pool, { ...names, listen: false });
    const topic = uniqueName('hold');
    await inTx(async (tx) => {
      await store.enqueue(tx, [client.prepare(topic, { i: 0 }, { key: 'k' })]);
    });
    const [first] = await store.claim(10, 30_000);
    expect(await store.markFailed(first!, new MqError('REJECTED', 'no'), new Date(Date.now() + 300))).toBe(1);
    await inTx(async (tx) => {
      await store.enqueue(tx, [client.prepare(topic, { i: 1 }, { key: 'k' }), client.prepare(topic, { i: 2 }, { key: 'k' }), client.prepare(topic, { i: 3 }, { key: 'j' })]);
    });
    expect((await store.claim(10, 30_000)).map((r) => bodyOf(r.envelope).i)).toEqual([3]); // k waits for its retry
    await sleep(400);
    const retry = await store.claim(10, 30_000);
    expect(retry.map((r) => [bodyOf(r.envelope).i, r.attempts])).toEqual([[0, 2]]); // alone for its key; the second claim
    expect(await store.markFailed(retry[0]!, new MqError('REJECTED', 'no'), new Date(Date.now() - 1))).toBe(1);
    const again = await store.claim(10, 30_000);
    expect(again.map((r) => bodyOf(r.envelope).i)).toEqual([0]);
    expect(await store.markPublished(again)).toBe(1);
    expect((await store.claim(10, 30_000)).map((r) => bodyOf(r.envelope).i)).toEqual([1, 2]);
  });

  it('a TOO_LARGE row is dead after maxAttempts, stops holding its key, and can be replayed or discarded', async () => {
    const names = await freshTables();
    const name = uniqueName('pgdead');
    const client = await connect(`memory://${name}`, { adapters: [memory()], publish: { timeoutMs: 100 } });
    closers.push(() => client.close());
    const broker = memoryBroker(name);
    const store = new PostgresOutboxStore(pool, { ...names, listen: false });
    const relay = new OutboxRelay(store, client, { maxAttempts: 3, backoff: { initialDelayMs: 1, maxDelayMs: 1 } });
    const topic = uniqueName('dead');
    let deadId = '';
    await inTx(async (tx) => {
      const e = client.prepare(topic, { i: 0 }, { key: 'k' });
      deadId = e.id;
      await store.enqueue(tx, [e]);
    });
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      broker.injectSendFailures(new MqError('TOO_LARGE', 'over the broker limit'));
      expect(await relay.relayOnce()).toBe(0);
      await sleep(20);
    }
    const dead = await store.listDead();
    expect(dead.map((d) => [d.envelope.id, d.envelope.key, d.attempts])).toEqual([[deadId, 'k', 3]]);
    expect(dead[0]!.lastError).toContain('TOO_LARGE');
    expect(dead[0]!.deadAt.getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(bodyOf(dead[0]!.envelope)).toEqual({ i: 0 });
    expect(await store.metrics()).toMatchObject({ pending: 0, failing: 0, dead: 1 });
    expect(await store.stats()).toMatchObject({ pending: 0, dead: 1 });
    // No longer retried, and its key moves on.
    await inTx(async (tx) => {
      await store.enqueue(tx, [client.prepare(topic, { i: 1 }, { key: 'k' }), client.prepare(topic, { i: 2 }, { key: 'k' })]);
    });
    expect(await relay.relayOnce()).toBe(2);
    expect(broker.published(topic).map((e) => bodyOf(e).i)).toEqual([1, 2]);
    // Replayed: published with a fresh attempt budget, id and body intact.
    expect(await store.replayDead(['999999999'])).toBe(0);
    expect(await store.replayDead([dead[0]!.seq])).toBe(1);
    expect(await store.listDead()).toEqual([]);
    expect(await relay.relayOnce()).toBe(1);
    expect(broker.published(topic).map((e) => e.id)).toContain(deadId);
    // Two more dead ones: paged, then discarded all at once.
    await inTx(async (tx) => {
      await store.enqueue(tx, [client.prepare(topic, { i: 3 }), client.prepare(topic, { i: 4 })]);
    });
    const once = new OutboxRelay(store, client, { maxAttempts: 1 });
    broker.injectSendFailures(new MqError('UNROUTABLE', 'no queue'), new MqError('NOT_FOUND', 'no topic'));
    expect(await once.relayOnce()).toBe(0);
    const page1 = await store.listDead({ limit: 1 });
    const page2 = await store.listDead({ limit: 1, afterSeq: page1[0]!.seq });
    expect([...page1, ...page2].map((d) => bodyOf(d.envelope).i)).toEqual([3, 4]);
    expect(await store.discardDead()).toBe(2);
    expect(await store.metrics()).toMatchObject({ pending: 0, dead: 0 });
  });

  it('marks are fenced by the claim: a stale relay changes nothing after another took its lease over', async () => {
    const names = await freshTables();
    const { client } = await memClient();
    const a = new PostgresOutboxStore(pool, { ...names, relayId: 'a', listen: false });
    const b = new PostgresOutboxStore(pool, { ...names, relayId: 'b', listen: false });
    const topic = uniqueName('fence');
    await inTx(async (tx) => {
      await a.enqueue(tx, [client.prepare(topic, 1, { key: 'k' }), client.prepare(topic, 2)]);
    });
    const stale = await a.claim(10, 200);
    expect(stale).toHaveLength(2);
    await sleep(300);
    // Lapsed rows are taken over one claim each (suspects go out alone).
    const current = [...(await b.claim(10, 60_000)), ...(await b.claim(10, 60_000))];
    expect(current.map((r) => r.seq)).toEqual(stale.map((r) => r.seq));
    expect(await a.markPublished(stale)).toBe(0);
    expect(await a.markFailed(stale[0]!, new MqError('TIMEOUT', 'late'), new Date())).toBe(0);
    expect(await a.markDead(stale[1]!, new MqError('TOO_LARGE', 'late'))).toBe(0);
    const { rows } = await pool.query(`SELECT claimed_by, attempts, published_at, claimed_until > now() AS held FROM "${names.table}" ORDER BY seq`);
    expect(rows).toEqual([
      { claimed_by: 'b', attempts: 2, published_at: null, held: true },
      { claimed_by: 'b', attempts: 2, published_at: null, held: true },
    ]);
    expect(await a.listDead()).toEqual([]);
    // The owner's marks apply.
    expect(await b.markFailed(current[0]!, new MqError('TIMEOUT', 't'), new Date(Date.now() - 1))).toBe(1);
    expect(await b.markPublished([current[1]!])).toBe(1);
    // delete mode is fenced too
    const deleting = new PostgresOutboxStore(pool, { ...names, listen: false, onPublished: 'delete' });
    const [retry] = await deleting.claim(10, 100);
    await sleep(200);
    const [taken] = await b.claim(10, 60_000);
    expect(await deleting.markPublished([retry!])).toBe(0);
    expect(await b.markPublished([taken!])).toBe(1);
  });

  it('the relay refuses a lease that would not outlast a publish (CONFIG naming both)', async () => {
    const names = await freshTables();
    const { client } = await memClient(5_000);
    const store = new PostgresOutboxStore(pool, { ...names, listen: false });
    expect(() => new OutboxRelay(store, client, { leaseMs: 5_000 })).toThrow(/leaseMs.*publish\.timeoutMs/);
    expect(() => postgresOutbox(client, { pool, ...names, relay: { leaseMs: 2_000 } })).toThrow(/leaseMs.*publish\.timeoutMs/);
    expect(() => postgresOutbox(client, { pool, ...names, relay: { leasMs: 60_000 } as never })).toThrow(/leasMs/);
    expect(() => postgresOutbox(client, { pool, ...names, retentionMS: 1 } as never)).toThrow(/retentionMS/);
    expect(() => new PostgresOutboxStore(pool, { ...names, tabel: 'x' } as never)).toThrow(/tabel/);
    expect(new OutboxRelay(store, client, { leaseMs: 5_001 }).leaseMs).toBe(5_001);
    expect(new OutboxRelay(store, client).leaseMs).toBe(30_000);
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
