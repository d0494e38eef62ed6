/**
 * `mqkit outbox status|dead|retry`: the PostgreSQL outbox of @mqkit/postgres, through its own
 * store (metrics, listDead, replayDead), so the CLI reads the tables exactly as the relay does.
 */
import pg from 'pg';
import { z } from 'zod';
import { MqError, redactUrl } from '@mqkit/core';
import { parseOptions } from '@mqkit/core/driver';
import { pgConnectionString, PostgresOutboxStore, type OutboxMetrics } from '@mqkit/postgres';
import { output, type CommandContext } from '../context.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { formatAge, formatTable } from '../table.ts';

const base = { db: z.string().min(1).optional(), table: z.string().min(1).default('mqkit_outbox'), schema: z.string().min(1).default('public') };
const statusSchema = z.object(base).strict();
const deadSchema = z.object({ ...base, limit: z.coerce.number().int().min(1).default(20) }).strict();
const retrySchema = z.object({ ...base, limit: z.coerce.number().int().min(1).optional(), id: z.array(z.string().min(1)).optional() }).strict();

async function withStore<T>(ctx: CommandContext, opts: z.output<typeof statusSchema>, use: (store: PostgresOutboxStore, db: string) => Promise<T>): Promise<T> {
  const db = opts.db ?? ctx.io.env['DATABASE_URL'];
  if (db === undefined || db.length === 0) throw new MqError('CONFIG', 'no database URL: pass --db <postgres://…> or set DATABASE_URL');
  if (!/^postgres(ql)?:\/\//i.test(db)) throw new MqError('CONFIG', `--db must be a postgres:// URL, got ${redactUrl(db)}`);
  const pool = new pg.Pool({ connectionString: pgConnectionString(db), max: 2, connectionTimeoutMillis: ctx.flags.timeout });
  pool.on('error', () => {}); // an idle client's failure surfaces on the next query
  try {
    const store = new PostgresOutboxStore(pool, { table: opts.table, schema: opts.schema, listen: false });
    return await use(store, db);
  } catch (err) {
    // 42P01: the outbox table does not exist (wrong --table/--schema, or never migrated).
    if ((err as { cause?: { code?: string } }).cause?.code === '42P01') {
      throw new MqError('NOT_FOUND', `outbox table ${opts.schema}.${opts.table} (or its _dead table) does not exist`, { cause: err });
    }
    throw err;
  } finally {
    await pool.end().catch(() => {});
  }
}

/** `outbox status --json`: the store's own metrics (pending, failing, claimed, oldestPendingAgeMs, retained, dead) and the table. */
export type OutboxStatus = { table: string } & OutboxMetrics;

export async function outboxStatus(ctx: CommandContext, raw: unknown): Promise<ExitCode> {
  const opts = parseOptions(statusSchema, raw, 'outbox status');
  return withStore(ctx, opts, async (store) => {
    const m = await store.metrics();
    const status: OutboxStatus = { table: `${opts.schema}.${opts.table}`, ...m };
    output<OutboxStatus>(ctx, status, () =>
      formatTable(
        [{ header: 'TABLE' }, { header: 'PENDING', align: 'right' }, { header: 'FAILING', align: 'right' }, { header: 'CLAIMED', align: 'right' }, { header: 'OLDEST', align: 'right' }, { header: 'DEAD', align: 'right' }],
        [[status.table, String(m.pending), String(m.failing), String(m.claimed), m.pending === 0 ? '-' : formatAge(m.oldestPendingAgeMs), String(m.dead)]],
      ),
    );
    return EXIT.OK;
  });
}

/** One row of `outbox dead --json`. */
export interface OutboxDeadRow {
  seq: string;
  id: string;
  topic: string;
  key: string | null;
  attempts: number;
  lastError: string;
  deadAt: string;
}

/** `outbox dead --json`. */
export interface OutboxDeadDocument {
  table: string;
  dead: OutboxDeadRow[];
}

/** `outbox retry --json`. */
export interface OutboxRetryDocument {
  table: string;
  /** Rows moved back to the outbox. */
  retried: number;
}

export async function outboxDead(ctx: CommandContext, raw: unknown): Promise<ExitCode> {
  const opts = parseOptions(deadSchema, raw, 'outbox dead');
  return withStore(ctx, opts, async (store) => {
    const rows: OutboxDeadRow[] = (await store.listDead({ limit: opts.limit })).map((r) => ({
      seq: r.seq,
      id: r.envelope.id,
      topic: r.envelope.topic,
      key: r.envelope.key ?? null,
      attempts: r.attempts,
      lastError: r.lastError,
      deadAt: r.deadAt.toISOString(),
    }));
    output<OutboxDeadDocument>(ctx, { table: `${opts.schema}.${opts.table}`, dead: rows }, () =>
      rows.length === 0
        ? 'no dead rows\n'
        : formatTable(
            [{ header: 'SEQ', align: 'right' }, { header: 'ID' }, { header: 'TOPIC' }, { header: 'ATTEMPTS', align: 'right' }, { header: 'DEAD SINCE' }, { header: 'LAST ERROR' }],
            rows.map((r) => [r.seq, r.id, r.topic, String(r.attempts), r.deadAt, r.lastError.slice(0, 80)]),
          ),
    );
    return EXIT.OK;
  });
}

export async function outboxRetry(ctx: CommandContext, raw: unknown): Promise<ExitCode> {
  const opts = parseOptions(retrySchema, raw, 'outbox retry');
  return withStore(ctx, opts, async (store) => {
    let seqs: string[] | undefined;
    if (opts.id !== undefined) {
      // By message id: the rows' seqs, from the dead table.
      const wanted = new Set(opts.id);
      seqs = (await store.listDead({ limit: 1_000_000 })).filter((r) => wanted.has(r.envelope.id)).map((r) => r.seq);
      if (seqs.length === 0) throw new MqError('NOT_FOUND', `no dead row with id ${opts.id.join(', ')}`);
    } else if (opts.limit !== undefined) {
      seqs = (await store.listDead({ limit: opts.limit })).map((r) => r.seq);
    }
    const moved = seqs?.length === 0 ? 0 : await store.replayDead(seqs);
    output<OutboxRetryDocument>(ctx, { table: `${opts.schema}.${opts.table}`, retried: moved }, () => `moved ${moved} dead row(s) back to ${opts.schema}.${opts.table}; the relay publishes them again\n`);
    return EXIT.OK;
  });
}
