/**
 * The outbox used through a query builder, exactly as @mqkit/postgres's README shows for Kysely:
 * the business row and its message in one Kysely transaction, through a small SqlExecutor over
 * the Kysely transaction. Real PostgreSQL; the in-memory broker as destination.
 */
import { connect } from '@mqkit/core';
import { postgresOutbox, type SqlExecutor } from '@mqkit/postgres';
import { memory, memoryBroker } from '@mqkit/testing';
import { CompiledQuery, Kysely, PostgresDialect, type Transaction } from 'kysely';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueIdent, uniqueName } from '../src/names.ts';
import { waitFor } from '../src/wait.ts';

interface DB {
  [table: string]: { id: string; amount: number };
}

const { url } = requireBroker('postgres');
const pool = new pg.Pool({ connectionString: url, max: 4 });
pool.on('error', () => {});
const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
const orders = uniqueIdent('kysely_orders');
const table = uniqueIdent('kysely_outbox');

/** The README's executor: Kysely's raw query runner speaks `$1` placeholders like pg. */
const executor = (trx: Transaction<DB>): SqlExecutor => ({
  query: (text, values = []) => trx.executeQuery(CompiledQuery.raw(text, values)),
});

afterAll(async () => {
  await pool.query(`DROP TABLE IF EXISTS "${orders}"; DROP TABLE IF EXISTS "${table}" CASCADE; DROP TABLE IF EXISTS "${table}_dedup"; DROP FUNCTION IF EXISTS "${table}_notify"()`).catch(() => {});
  await db.destroy();
});

it('a Kysely transaction writes the order and its message together, or neither', async () => {
  const name = uniqueName('kysely');
  const mq = await connect(`memory://${name}`, { adapters: [memory()] });
  const box = postgresOutbox(mq, { pool, table });
  try {
    await box.migrate();
    await pool.query(`CREATE TABLE "${orders}" (id text PRIMARY KEY, amount integer NOT NULL)`);
    box.relay.start();

    await db.transaction().execute(async (trx) => {
      await trx.insertInto(orders).values({ id: 'o-1', amount: 42 }).execute();
      await box.outbox.enqueue(executor(trx), 'order-created', { id: 'o-1', amount: 42 }, { id: 'order-created:o-1', key: 'o-1' });
    });
    await expect(
      db.transaction().execute(async (trx) => {
        await trx.insertInto(orders).values({ id: 'o-2', amount: 7 }).execute();
        await box.outbox.enqueue(executor(trx), 'order-created', { id: 'o-2', amount: 7 }, { id: 'order-created:o-2', key: 'o-2' });
        throw new Error('payment declined: roll back');
      }),
    ).rejects.toThrow('payment declined');

    await waitFor('the committed message', () => memoryBroker(name).published('order-created').length >= 1, { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 300));
    expect(memoryBroker(name).published('order-created').map((e) => e.id)).toEqual(['order-created:o-1']);
    const rows = await db.selectFrom(orders).select(['id']).execute();
    expect(rows.map((r) => r.id)).toEqual(['o-1']);
    const stored = await pool.query(`SELECT id FROM "${table}"`);
    expect(stored.rows.map((r: { id: string }) => r.id)).toEqual(['order-created:o-1']);
  } finally {
    await box.close();
    await mq.close();
  }
});
