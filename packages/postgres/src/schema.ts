import { qualified, quoteIdent } from './identifiers.ts';
import { parseTableOptions, type TableOptions } from './options.ts';
import type { SqlExecutor } from './executor.ts';

/** The dead table of an outbox table: `<table>_dead`. */
export function deadTableName(table: string): string {
  return `${table}_dead`;
}

/**
 * The DDL for the outbox (with its dead table) and dedup tables. Idempotent (`IF NOT EXISTS`,
 * `ADD COLUMN IF NOT EXISTS`, `CREATE OR REPLACE`), so it can run at every start-up and upgrades
 * tables made by earlier versions; `sql/mqkit-postgres.sql` is this output for the default names.
 */
export function migrationSql(options: TableOptions = {}): string {
  const o = parseTableOptions(options);
  const outbox = qualified(o.schema, o.table);
  const dead = qualified(o.schema, deadTableName(o.table));
  const dedup = qualified(o.schema, o.dedupTable);
  const channel = o.channel ?? o.table;
  quoteIdent(channel, 'channel');
  const notifyFn = qualified(o.schema, `${o.table}_notify`);
  const trigger = quoteIdent(`${o.table}_notify`, 'trigger');
  const ix = (suffix: string): string => quoteIdent(`${o.table}_${suffix}`, 'index');
  return `-- @mqkit/postgres schema (idempotent)
CREATE TABLE IF NOT EXISTS ${outbox} (
  seq           bigserial   PRIMARY KEY,
  id            text        NOT NULL,
  topic         text        NOT NULL,
  key           text,
  headers       jsonb       NOT NULL DEFAULT '{}'::jsonb,
  body          bytea       NOT NULL,
  message_ts    bigint      NOT NULL,
  delay_ms      integer,
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  available_at  timestamptz NOT NULL DEFAULT '-infinity',
  attempts      integer     NOT NULL DEFAULT 0,
  claimed_until timestamptz,
  claimed_by    text,
  claim_token   text,
  last_error    text,
  published_at  timestamptz
) WITH (
  -- A queue table: room for HOT updates when a claim stamps claimed_until, and statistics kept
  -- fresh so the claim keeps its ordered index scan as the backlog grows and shrinks.
  fillfactor = 80,
  autovacuum_vacuum_scale_factor = 0.02,
  autovacuum_analyze_scale_factor = 0.02
);
-- Tables made before marks were fenced gain the claim token (a no-op otherwise).
ALTER TABLE ${outbox} ADD COLUMN IF NOT EXISTS claim_token text;
-- What the relay scans: unpublished rows in order.
CREATE INDEX IF NOT EXISTS ${ix('pending')} ON ${outbox} (seq) WHERE published_at IS NULL;
-- Per-key order checks.
CREATE INDEX IF NOT EXISTS ${ix('pending_key')} ON ${outbox} (key, seq) WHERE published_at IS NULL AND key IS NOT NULL;
-- Rows that hold their key back (leased by a relay or waiting for a retry): a claim reads only these.
CREATE INDEX IF NOT EXISTS ${ix('held')} ON ${outbox} (key, seq)
  WHERE published_at IS NULL AND key IS NOT NULL AND (claimed_until IS NOT NULL OR available_at > '-infinity');
-- Rows under a claim (a few batches at most): where a claim looks for lapsed ones.
CREATE INDEX IF NOT EXISTS ${ix('claimed')} ON ${outbox} (seq) WHERE published_at IS NULL AND claim_token IS NOT NULL;
-- Cleanup of published rows.
CREATE INDEX IF NOT EXISTS ${ix('published')} ON ${outbox} (published_at) WHERE published_at IS NOT NULL;

-- Rows that failed for good (the relay's maxAttempts), moved out of the outbox so they neither
-- hold their key back nor slow claims; replayDead moves them back under their seq.
CREATE TABLE IF NOT EXISTS ${dead} (
  seq         bigint      PRIMARY KEY,
  id          text        NOT NULL,
  topic       text        NOT NULL,
  key         text,
  headers     jsonb       NOT NULL,
  body        bytea       NOT NULL,
  message_ts  bigint      NOT NULL,
  delay_ms    integer,
  created_at  timestamptz NOT NULL,
  attempts    integer     NOT NULL,
  last_error  text,
  dead_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One NOTIFY per inserting statement wakes idle relays; delivered on commit only, so a rolled-back
-- business transaction wakes nobody. Written as a trigger so ORMs inserting directly work too.
CREATE OR REPLACE FUNCTION ${notifyFn}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_notify(TG_ARGV[0], '');
  RETURN NULL;
END
$fn$;
DROP TRIGGER IF EXISTS ${trigger} ON ${outbox};
CREATE TRIGGER ${trigger} AFTER INSERT ON ${outbox}
  FOR EACH STATEMENT EXECUTE FUNCTION ${notifyFn}('${channel}');

-- Dedup marks: 'done' rows are written in the handler's own transaction (exactly-once effects);
-- 'processing' rows are leases of the DedupStore protocol, fenced by their holder's token.
CREATE TABLE IF NOT EXISTS ${dedup} (
  key        text        PRIMARY KEY,
  state      text        NOT NULL CHECK (state IN ('processing', 'done')),
  expires_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  token      text
);
-- Tables created before leases were fenced gain the column (a no-op otherwise).
ALTER TABLE ${dedup} ADD COLUMN IF NOT EXISTS token text;
CREATE INDEX IF NOT EXISTS ${quoteIdent(`${o.dedupTable}_expires`, 'index')} ON ${dedup} (expires_at);
`;
}

/**
 * Creates (or updates) the outbox and dedup tables. Sent as one multi-statement query, which
 * PostgreSQL runs as one transaction, under a transaction-level advisory lock so several services
 * starting at once do not race on `CREATE` (this also works through a `Pool`).
 */
export async function migrate(executor: SqlExecutor, options: TableOptions = {}): Promise<void> {
  await executor.query(`SELECT pg_advisory_xact_lock(hashtext('mqkit-postgres-migrate'));\n${migrationSql(options)}`);
}
