/**
 * Raw pg against the real PostgreSQL: the two primitives the outbox relay and the Postgres dedup
 * store build on — LISTEN/NOTIFY (delivered on commit only) and FOR UPDATE SKIP LOCKED.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueIdent } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';

const { url } = requireBroker('postgres');
const clients: pg.Client[] = [];
const table = uniqueIdent('raw_pg_outbox');

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  clients.push(c);
  return c;
}

let admin: pg.Client;

beforeAll(async () => {
  admin = await client();
  await admin.query(`CREATE TABLE "${table}" (id serial PRIMARY KEY, payload text NOT NULL, claimed_by text)`);
  await admin.query(`INSERT INTO "${table}" (payload) SELECT 'm' || g FROM generate_series(1, 10) g`);
});

afterAll(async () => {
  await admin?.query(`DROP TABLE IF EXISTS "${table}"`).catch(() => {});
  await Promise.allSettled(clients.map((c) => c.end()));
});

describe('pg raw client', () => {
  it('LISTEN/NOTIFY delivers the payload, only once the notifying transaction commits', async () => {
    const channel = uniqueIdent('raw_pg_ch');
    const listener = await client();
    const got: Array<{ channel: string; payload: string | undefined }> = [];
    listener.on('notification', (n) => got.push({ channel: n.channel, payload: n.payload }));
    await listener.query(`LISTEN "${channel}"`);

    const notifier = await client();
    // rolled back: never delivered
    await notifier.query('BEGIN');
    await notifier.query('SELECT pg_notify($1, $2)', [channel, 'rolled-back']);
    await notifier.query('ROLLBACK');
    // committed: delivered, but not before COMMIT
    await notifier.query('BEGIN');
    await notifier.query('SELECT pg_notify($1, $2)', [channel, 'committed']);
    await sleep(300);
    expect(got).toEqual([]);
    await notifier.query('COMMIT');

    await waitFor('the committed notification', () => got.length >= 1, { timeoutMs: 10_000 });
    await sleep(200);
    expect(got).toEqual([{ channel, payload: 'committed' }]);
    await listener.query(`UNLISTEN "${channel}"`);
  });

  it('FOR UPDATE SKIP LOCKED hands concurrent relays disjoint rows; NOWAIT on a locked row fails with 55P03', async () => {
    const a = await client();
    const b = await client();
    const claim = `SELECT id FROM "${table}" WHERE claimed_by IS NULL ORDER BY id LIMIT 3 FOR UPDATE SKIP LOCKED`;

    await a.query('BEGIN');
    const ra = (await a.query<{ id: number }>(claim)).rows.map((r) => r.id);
    await b.query('BEGIN');
    const rb = (await b.query<{ id: number }>(claim)).rows.map((r) => r.id);

    expect(ra).toEqual([1, 2, 3]);
    expect(rb).toEqual([4, 5, 6]);

    // without SKIP LOCKED, B cannot take A's rows
    const err = await b.query(`SELECT id FROM "${table}" WHERE id = $1 FOR UPDATE NOWAIT`, [ra[0]]).then(
      () => undefined,
      (e: { code?: string }) => e,
    );
    expect(err?.code).toBe('55P03'); // lock_not_available; B's transaction is now aborted
    await b.query('ROLLBACK');

    await a.query(`UPDATE "${table}" SET claimed_by = 'a' WHERE id = ANY($1)`, [ra]);
    await a.query('COMMIT');

    // B's rows were released by its rollback; the claimed ones are not offered again
    const next = (await b.query<{ id: number }>(claim.replace('FOR UPDATE SKIP LOCKED', ''))).rows.map((r) => r.id);
    expect(next).toEqual([4, 5, 6]);
  });
});
