import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { z } from 'zod';
import {
  silentLogger,
  type DeadOutboxRecord,
  type ListDeadOptions,
  type Logger,
  type OutboxRecord,
  type OutboxStats,
  type OutboxStore,
} from '@mqkit/core';
import { parseOptions, type Envelope, type MqError } from '@mqkit/core/driver';
import { toPgMqError } from './errors.ts';
import { queryRows, type SqlExecutor } from './executor.ts';
import { qualified } from './identifiers.ts';
import { NotifyListener } from './notify-listener.ts';
import { deadTableName } from './schema.ts';
import { outboxOptionsSchema, parseOutboxOptions, type PostgresOutboxOptions, type ResolvedOutboxOptions } from './options.ts';

interface ClaimedRow {
  seq: string;
  /** Only from claim(): the previous claim lapsed. */
  lapsed?: boolean;
  id: string;
  topic: string;
  key: string | null;
  headers: Record<string, string>;
  body: Buffer;
  message_ts: string;
  delay_ms: number | null;
  attempts: number;
}

interface DeadRow extends ClaimedRow {
  last_error: string | null;
  dead_at: Date;
}

/** The store's own options, plus `logger`: unknown keys are refused (a typo must not pass). */
const storeOptionsSchema = outboxOptionsSchema
  .partial()
  .extend({ logger: z.custom<Logger>((v) => typeof (v as Logger | undefined)?.warn === 'function', 'must be a logger').optional() })
  .strict();

/** A snapshot of the outbox backlog, for dashboards and alerts (core's stats and more). */
export interface OutboxMetrics extends OutboxStats {
  /** Rows not yet confirmed by the broker. */
  pending: number;
  /** Pending rows whose publish failed at least once (they wait for their retry time). */
  failing: number;
  /** Pending rows currently claimed by a relay. */
  claimed: number;
  /** Age of the oldest pending row in ms (0 when none): the relay's lag. */
  oldestPendingAgeMs: number;
  /** Published rows still kept for the retention period. */
  retained: number;
  /** Dead rows (in the `<table>_dead` table) waiting for replay or discard. */
  dead: number;
}

/** Options of {@link PostgresOutboxStore}. */
export interface PostgresOutboxStoreOptions extends PostgresOutboxOptions {
  logger?: Logger;
}

/**
 * The transactional outbox on PostgreSQL (see the package README for the table).
 *
 * - {@link enqueue} inserts into the caller's transaction: pass the `pg` client on which you ran
 *   `BEGIN` (or any {@link SqlExecutor} bound to your transaction), never the pool.
 * - {@link claim} leases due rows with `FOR UPDATE SKIP LOCKED`; claims are serialised by a
 *   transaction-level advisory lock held for one statement, so that two relays cannot take rows of
 *   one key out of order. A key's rows are claimed only up to its first row that is leased by
 *   someone else or waiting for a retry, and a retry is claimed without the rows after it: per-key
 *   order across failures. Each claim stamps a fresh `claim_token`; the marks apply only to rows
 *   still under the caller's token (a relay whose lease was taken over changes nothing). Each
 *   claim counts an attempt; a row whose claim lapsed unmarked (its relay died or hung) is
 *   claimed alone, oldest first, and holds its key back until then.
 * - {@link markDead} moves a row into `<table>_dead` (out of the claim path: it no longer holds its
 *   key back); {@link listDead}, {@link replayDead} and {@link discardDead} manage them there.
 * - {@link waitForWork} wakes on the NOTIFY the table's trigger sends at commit, polling otherwise.
 *
 * Plug it into core's `Outbox` (writing) and `OutboxRelay` (publishing).
 */
export class PostgresOutboxStore implements OutboxStore<SqlExecutor> {
  readonly #pool: pg.Pool;
  readonly #options: ResolvedOutboxOptions;
  readonly #table: string;
  readonly #deadTable: string;
  readonly #lockKey: string;
  readonly #listener: NotifyListener | undefined;
  readonly #logger: Logger;

  /** Throws {@link MqError} CONFIG for an unknown or invalid option, naming it. */
  constructor(pool: pg.Pool, options: PostgresOutboxStoreOptions = {}) {
    parseOptions(storeOptionsSchema, options, 'PostgresOutboxStore');
    const { logger, ...rest } = options;
    this.#pool = pool;
    this.#options = parseOutboxOptions(rest);
    this.#logger = logger ?? silentLogger;
    this.#table = qualified(this.#options.schema, this.#options.table);
    this.#deadTable = qualified(this.#options.schema, deadTableName(this.#options.table));
    this.#lockKey = `mqkit-outbox:${this.#options.schema}.${this.#options.table}`;
    this.#listener = this.#options.listen
      ? new NotifyListener(pool.options, this.#options.channel ?? this.#options.table, this.#logger)
      : undefined;
  }

  /** The resolved options (table names, retention, relay id). */
  get options(): Readonly<ResolvedOutboxOptions> {
    return this.#options;
  }

  async enqueue(tx: SqlExecutor, envelopes: readonly Envelope[]): Promise<void> {
    if (envelopes.length === 0) return;
    const cols: [string[], string[], Array<string | null>, string[], Buffer[], string[], Array<number | null>] = [[], [], [], [], [], [], []];
    for (const e of envelopes) {
      cols[0].push(e.id);
      cols[1].push(e.topic);
      cols[2].push(e.key ?? null);
      cols[3].push(JSON.stringify(e.headers));
      cols[4].push(Buffer.from(e.body.buffer, e.body.byteOffset, e.body.byteLength));
      cols[5].push(String(e.timestamp));
      cols[6].push(e.delayMs ?? null);
    }
    try {
      // unnest keeps array order, so seq follows the order the caller enqueued in.
      await tx.query(
        `INSERT INTO ${this.#table} (id, topic, key, headers, body, message_ts, delay_ms)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::bytea[], $6::bigint[], $7::int[])`,
        cols,
      );
    } catch (err) {
      throw toPgMqError(err, 'outbox enqueue failed');
    }
  }

  async claim(limit: number, leaseMs: number): Promise<OutboxRecord[]> {
    const t = this.#table;
    const token = randomUUID();
    // One round trip: a multi-statement simple query runs as one transaction, and under READ
    // COMMITTED the UPDATE's snapshot is taken after the advisory lock is granted, so it sees the
    // claims the previous holder committed.
    //
    // The planner settings are local to this transaction: with stale statistics (a fresh or
    // bursty queue table) it would read and sort the whole backlog; the pending index already
    // yields rows in seq order, so walking it and stopping at the limit is always the right plan.
    const sql = `SELECT pg_advisory_xact_lock(hashtext(${pg.escapeLiteral(this.#lockKey)}));
SET LOCAL enable_sort = off;
SET LOCAL enable_bitmapscan = off;
WITH blocked AS MATERIALIZED (
  -- Rows that hold the rest of their key back: leased, lapsed, waiting for a retry, or a retry
  -- (which goes out alone: if it fails again, nothing after it may have been published with it).
  -- A retry always has available_at set, so the held index covers them all.
  SELECT key, min(seq) AS first_seq FROM ${t}
  WHERE published_at IS NULL AND key IS NOT NULL AND (claimed_until IS NOT NULL OR available_at > '-infinity')
    AND (available_at > now() OR claimed_until > now() OR attempts > 0 OR (claim_token IS NOT NULL AND claimed_until IS NOT NULL))
  GROUP BY key
), lapsed AS MATERIALIZED (
  -- Claimed, never marked, lease over: its relay died or hung publishing it. The oldest goes out
  -- alone (it may be what kills relays); the claimed index holds only rows under a claim.
  SELECT o.seq, true AS lapsed FROM ${t} o
  WHERE o.published_at IS NULL AND o.claim_token IS NOT NULL AND o.claimed_until <= now()
    AND NOT EXISTS (SELECT 1 FROM blocked b WHERE b.key = o.key AND b.first_seq < o.seq)
  ORDER BY o.seq
  LIMIT 1
  FOR UPDATE OF o SKIP LOCKED
), picked AS (
  SELECT o.seq, false AS lapsed FROM ${t} o
  WHERE NOT EXISTS (SELECT 1 FROM lapsed)
    AND o.published_at IS NULL AND o.available_at <= now()
    AND (o.claimed_until IS NULL OR (o.claimed_until <= now() AND o.claim_token IS NULL))
    AND NOT EXISTS (SELECT 1 FROM blocked b WHERE b.key = o.key AND b.first_seq < o.seq)${this.#perKeyFilter()}
  ORDER BY o.seq
  LIMIT ${Math.max(1, Math.floor(limit))}
  FOR UPDATE OF o SKIP LOCKED
), chosen AS (
  SELECT seq, lapsed FROM lapsed UNION ALL SELECT seq, lapsed FROM picked
)
UPDATE ${t} AS t SET claimed_until = now() + ${Math.max(1, Math.floor(leaseMs))} * interval '1 millisecond',
  claimed_by = ${pg.escapeLiteral(this.#options.relayId)}, claim_token = ${pg.escapeLiteral(token)},
  attempts = t.attempts + 1
FROM chosen WHERE t.seq = chosen.seq
RETURNING t.seq, t.id, t.topic, t.key, t.headers, t.body, t.message_ts, t.delay_ms, t.attempts, chosen.lapsed`;
    let rows: ClaimedRow[];
    try {
      const results = (await this.#pool.query(sql)) as unknown as Array<pg.QueryResult<ClaimedRow>>;
      rows = results[results.length - 1]?.rows ?? [];
    } catch (err) {
      throw toPgMqError(err, 'outbox claim failed');
    }
    rows.sort((a, b) => compareSeq(a.seq, b.seq));
    return rows.map((row) => ({ ...recordOf(row), lapsed: row.lapsed === true, claimToken: token }));
  }

  /** With `maxPerKey`, only the first rows of each key among the pending ones qualify. */
  #perKeyFilter(): string {
    const max = this.#options.maxPerKey;
    if (max === 0) return '';
    return `
    AND (o.key IS NULL OR o.seq IN (
      SELECT r.seq FROM (
        SELECT seq, row_number() OVER (PARTITION BY key ORDER BY seq) AS rn
        FROM ${this.#table} WHERE published_at IS NULL AND key IS NOT NULL) r
      WHERE r.rn <= ${max}))`;
  }

  async markPublished(records: readonly OutboxRecord[]): Promise<number> {
    if (records.length === 0) return 0;
    const seqs = records.map((r) => r.seq);
    const tokens = records.map((r) => r.claimToken);
    // Fenced: only rows still under the claim the relay published them under.
    const claimed = `FROM unnest($1::bigint[], $2::text[]) AS m(seq, token) WHERE t.seq = m.seq AND t.claim_token = m.token AND t.published_at IS NULL`;
    try {
      const result =
        this.#options.onPublished === 'delete'
          ? await this.#pool.query(`DELETE FROM ${this.#table} AS t USING unnest($1::bigint[], $2::text[]) AS m(seq, token) WHERE t.seq = m.seq AND t.claim_token = m.token`, [seqs, tokens])
          : await this.#pool.query(`UPDATE ${this.#table} AS t SET published_at = now(), claimed_until = NULL, claim_token = NULL ${claimed}`, [seqs, tokens]);
      return result.rowCount ?? 0;
    } catch (err) {
      throw toPgMqError(err, 'outbox markPublished failed');
    }
  }

  async markFailed(record: OutboxRecord, error: MqError, retryAt: Date): Promise<number> {
    try {
      const result = await this.#pool.query(
        `UPDATE ${this.#table}
         SET claimed_until = NULL, claimed_by = NULL, claim_token = NULL, available_at = $2, last_error = $3
         WHERE seq = $1 AND claim_token = $4 AND published_at IS NULL`,
        [record.seq, retryAt, errorText(error), record.claimToken],
      );
      return result.rowCount ?? 0;
    } catch (err) {
      throw toPgMqError(err, 'outbox markFailed failed');
    }
  }

  /** Moves the row into `<table>_dead` in one statement (fenced by its claim). */
  async markDead(record: OutboxRecord, error: MqError): Promise<number> {
    try {
      const result = await this.#pool.query(
        `WITH moved AS (
           DELETE FROM ${this.#table} WHERE seq = $1 AND claim_token = $2 AND published_at IS NULL
           RETURNING ${ROW_COLUMNS}, attempts)
         INSERT INTO ${this.#deadTable} (${ROW_COLUMNS}, attempts, last_error)
         SELECT ${ROW_COLUMNS}, attempts, $3 FROM moved`,
        [record.seq, record.claimToken, errorText(error)],
      );
      return result.rowCount ?? 0;
    } catch (err) {
      throw toPgMqError(err, 'outbox markDead failed');
    }
  }

  async listDead(options: ListDeadOptions = {}): Promise<DeadOutboxRecord[]> {
    const limit = Math.max(1, Math.floor(options.limit ?? 100));
    try {
      const rows = await queryRows<DeadRow>(
        this.#pool,
        `SELECT seq, id, topic, key, headers, body, message_ts, delay_ms, attempts, last_error, dead_at FROM ${this.#deadTable}
         WHERE seq > $1 ORDER BY seq LIMIT $2`,
        [options.afterSeq ?? '0', limit],
      );
      return rows.map((row) => ({ ...recordOf(row), lastError: row.last_error ?? '', deadAt: row.dead_at }));
    } catch (err) {
      throw toPgMqError(err, 'outbox listDead failed');
    }
  }

  /**
   * Moves dead rows back into the outbox under their original `seq`, with attempts reset; the
   * insert trigger wakes the relays. `seqs` omitted: all of them.
   */
  async replayDead(seqs?: readonly string[]): Promise<number> {
    try {
      const result = await this.#pool.query(
        `WITH moved AS (DELETE FROM ${this.#deadTable} WHERE $1::bigint[] IS NULL OR seq = ANY($1::bigint[]) RETURNING ${ROW_COLUMNS}, last_error)
         INSERT INTO ${this.#table} (${ROW_COLUMNS}, last_error) SELECT ${ROW_COLUMNS}, last_error FROM moved`,
        [seqs ?? null],
      );
      return result.rowCount ?? 0;
    } catch (err) {
      throw toPgMqError(err, 'outbox replayDead failed');
    }
  }

  async discardDead(seqs?: readonly string[]): Promise<number> {
    try {
      const result = await this.#pool.query(`DELETE FROM ${this.#deadTable} WHERE $1::bigint[] IS NULL OR seq = ANY($1::bigint[])`, [seqs ?? null]);
      return result.rowCount ?? 0;
    } catch (err) {
      throw toPgMqError(err, 'outbox discardDead failed');
    }
  }

  async waitForWork(timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (this.#listener) return this.#listener.wait(timeoutMs, signal);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  }

  /** The backlog: pending and failing rows and the oldest one's age. One aggregate query. */
  async metrics(): Promise<OutboxMetrics> {
    try {
      const [row] = await queryRows<Record<string, string | null>>(
        this.#pool,
        `SELECT count(*) FILTER (WHERE published_at IS NULL) AS pending,
                count(*) FILTER (WHERE published_at IS NULL AND attempts > 0 AND (claim_token IS NULL OR claimed_until <= now())) AS failing,
                count(*) FILTER (WHERE published_at IS NULL AND claimed_until > now()) AS claimed,
                count(*) FILTER (WHERE published_at IS NOT NULL) AS retained,
                COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(created_at) FILTER (WHERE published_at IS NULL)) * 1000, 0) AS oldest,
                (SELECT count(*) FROM ${this.#deadTable}) AS dead
         FROM ${this.#table}`,
      );
      return {
        pending: Number(row?.pending ?? 0),
        failing: Number(row?.failing ?? 0),
        claimed: Number(row?.claimed ?? 0),
        retained: Number(row?.retained ?? 0),
        dead: Number(row?.dead ?? 0),
        oldestPendingAgeMs: Math.max(0, Math.round(Number(row?.oldest ?? 0))),
      };
    } catch (err) {
      throw toPgMqError(err, 'outbox metrics failed');
    }
  }

  /**
   * Deletes published rows older than `olderThanMs` (default: the retention), in batches so no
   * statement holds locks for long. Returns how many rows went.
   */
  async cleanup(olderThanMs: number = this.#options.retentionMs): Promise<number> {
    let total = 0;
    try {
      for (;;) {
        const result = await this.#pool.query(
          `DELETE FROM ${this.#table} WHERE seq IN (
             SELECT seq FROM ${this.#table}
             WHERE published_at IS NOT NULL AND published_at < now() - $1 * interval '1 millisecond'
             LIMIT $2 FOR UPDATE SKIP LOCKED)`,
          [olderThanMs, this.#options.cleanupBatchSize],
        );
        const n = result.rowCount ?? 0;
        total += n;
        if (n < this.#options.cleanupBatchSize) return total;
      }
    } catch (err) {
      throw toPgMqError(err, 'outbox cleanup failed');
    }
  }

  /** Core relay hook: the backlog figures it exports as gauges. */
  async stats(): Promise<OutboxStats> {
    const { pending, failing, oldestPendingAgeMs, dead } = await this.metrics();
    return { pending, failing, oldestPendingAgeMs, dead };
  }

  /**
   * Core relay hook, called every `maintenanceIntervalMs` (default 60 s): deletes published rows
   * past the retention.
   */
  async maintain(): Promise<void> {
    if (this.#options.onPublished === 'mark') {
      const deleted = await this.cleanup();
      if (deleted > 0) this.#logger.debug({ deleted }, 'outbox cleanup');
    }
  }

  /** Stops LISTENing. The pool stays open: it is the caller's. */
  async close(): Promise<void> {
    await this.#listener?.close();
  }
}

function compareSeq(a: string, b: string): number {
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}

/** The columns a row keeps when it moves between the outbox and its dead table. */
const ROW_COLUMNS = 'seq, id, topic, key, headers, body, message_ts, delay_ms, created_at';

function errorText(error: MqError): string {
  return `${error.code}: ${error.message}`.slice(0, 1000);
}

/** A row as a record, without a claim. */
function recordOf(row: ClaimedRow): Omit<OutboxRecord, 'claimToken'> {
  const envelope: Envelope = {
    id: row.id,
    topic: row.topic,
    key: row.key ?? undefined,
    headers: row.headers,
    body: new Uint8Array(row.body.buffer, row.body.byteOffset, row.body.byteLength),
    timestamp: Number(row.message_ts),
    ...(row.delay_ms === null ? {} : { delayMs: row.delay_ms }),
  };
  return { seq: String(row.seq), envelope, attempts: row.attempts };
}
