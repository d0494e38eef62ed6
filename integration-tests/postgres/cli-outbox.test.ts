/**
 * `mqkit outbox status|dead|retry` against the real PostgreSQL (#20): a row the relay gave up on
 * (moved to `<table>_dead` with its attempts and last error) shows in `status` and `dead`, and
 * `retry` moves it back to the outbox for the relay; pending rows show as backlog with their age.
 */
import type { OutboxDeadDocument } from '@mqkit/cli';
import { MqError, type Envelope } from '@mqkit/core';
import { migrate, PostgresOutboxStore } from '@mqkit/postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mqkit } from '../src/cli-scenario.ts';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueIdent } from '../src/names.ts';

const { url } = requireBroker('postgres');
let pool: pg.Pool;
const tables: string[] = [];

beforeAll(() => {
  pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => {});
});

afterAll(async () => {
  for (const t of tables) {
    await pool.query(`DROP TABLE IF EXISTS "${t}" CASCADE; DROP TABLE IF EXISTS "${t}_dead"; DROP TABLE IF EXISTS "${t}_dedup"; DROP FUNCTION IF EXISTS "${t}_notify"()`).catch(() => {});
  }
  await pool.end();
});

const envelope = (id: string): Envelope => ({ id, topic: 'orders', key: 'k1', headers: { 'content-type': 'application/json' }, body: new Uint8Array(Buffer.from('{"n":1}')), timestamp: Date.now() });

describe('mqkit outbox (#20)', () => {
  it('status shows backlog, age and dead rows; dead lists them; retry moves them back', async () => {
    const table = uniqueIdent('clibox');
    tables.push(table);
    await migrate(pool, { table, dedupTable: `${table}_dedup` });
    const store = new PostgresOutboxStore(pool, { table, dedupTable: `${table}_dedup`, listen: false });
    await store.enqueue(pool, [envelope('a'), envelope('b'), envelope('c')]);
    // The relay gives up on one: claimed, then moved to the dead table with its error.
    const [first] = await store.claim(1, 30_000);
    await store.markDead(first!, new MqError('REJECTED', 'topic refused the message'));
    const db = ['--db', url, '--table', table];

    const status = await mqkit(['outbox', 'status', '--json', ...db]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.json()).toMatchObject({ table: `public.${table}`, pending: 2, dead: 1, oldestPendingAgeMs: expect.any(Number) });
    const table1 = await mqkit(['outbox', 'status', ...db]);
    expect(table1.stdout).toMatch(new RegExp(`^TABLE\\s+PENDING\\s+FAILING\\s+CLAIMED\\s+OLDEST\\s+DEAD\\npublic\\.${table}\\s+2\\s+0\\s+0\\s+\\d+s\\s+1\\n$`));

    const dead = await mqkit(['outbox', 'dead', '--json', ...db]);
    expect(dead.code, dead.stderr).toBe(0);
    expect(dead.json<OutboxDeadDocument>().dead).toEqual([
      { seq: expect.any(String), id: 'a', topic: 'orders', key: 'k1', attempts: 1, lastError: expect.stringContaining('topic refused the message'), deadAt: expect.any(String) },
    ]);

    const unknown = await mqkit(['outbox', 'retry', '--id', 'zzz', ...db]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('mqkit: NOT_FOUND: no dead row with id zzz\n');
    const retry = await mqkit(['outbox', 'retry', '--id', 'a', '--json'], { DATABASE_URL: url });
    expect(retry.code, retry.stderr).toBe(2); // the default table mqkit_outbox: no such table or no such dead row there
    const moved = await mqkit(['outbox', 'retry', '--id', 'a', '--json', ...db]);
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.json()).toEqual({ table: `public.${table}`, retried: 1 });
    expect((await mqkit(['outbox', 'status', '--json', ...db])).json()).toMatchObject({ pending: 3, dead: 0 });
    // The relay can claim it again.
    const again = await store.claim(10, 30_000);
    expect(again.map((r) => r.envelope.id).sort()).toContain('a');
  }, 60_000);

  it('bad input exits 2 in one line: no database URL, wrong table, not a postgres URL', async () => {
    const none = await mqkit(['outbox', 'status']);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe('mqkit: CONFIG: no database URL: pass --db <postgres://…> or set DATABASE_URL\n');
    const wrong = await mqkit(['outbox', 'status', '--db', url, '--table', 'no_such_outbox_table']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toBe('mqkit: NOT_FOUND: outbox table public.no_such_outbox_table (or its _dead table) does not exist\n');
    const notPg = await mqkit(['outbox', 'status', '--db', 'mysql://x']);
    expect(notPg.code).toBe(2);
    const down = await mqkit(['outbox', 'status', '--db', 'postgres://postgres@127.0.0.1:1/mqkit', '--timeout', '3000']);
    expect(down.code).toBe(1);
    expect(down.stderr.trimEnd().split('\n')).toHaveLength(1);
  }, 30_000);
});
