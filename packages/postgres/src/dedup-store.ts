import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { BeginResult, DedupStore, Delivery, Handler, Logger } from '@mqkit/core';
import { parseOptions } from '@mqkit/core/driver';
import { z } from 'zod';
import { toPgMqError } from './errors.ts';
import { queryRows, type SqlExecutor } from './executor.ts';
import { qualified } from './identifiers.ts';
import { tableOptionsSchema } from './options.ts';

const DAY = 24 * 3600_000;
/** Most purge statements one automatic purge runs; the next write after the interval goes on. */
const PURGE_MAX_BATCHES = 100;

const isFunction = (v: unknown): boolean => typeof v === 'function';
const loggerSchema = z.custom<Logger>(
  (v) => typeof v === 'object' && v !== null && typeof (v as Logger).warn === 'function' && typeof (v as Logger).error === 'function',
  'must be a logger',
);

/** Options of {@link PostgresDedupStore}, validated (unknown keys rejected). */
export const postgresDedupOptionsSchema = tableOptionsSchema
  .pick({ schema: true, dedupTable: true })
  .extend({
    /** How long a done mark is kept by {@link PostgresDedupStore.markProcessed}, in ms. @default 7 days */
    ttlMs: z.number().int().positive().default(7 * DAY),
    /**
     * Expired marks and leases are purged automatically: the first write (`begin`, `complete`,
     * `markProcessed`) after this many ms starts a purge in the background, on the store's `db`.
     * 0 turns it off (call {@link PostgresDedupStore.purgeExpired} yourself). @default 60000
     */
    purgeIntervalMs: z.number().int().nonnegative().default(60_000),
    /** Rows deleted per purge statement, so a purge never holds long locks. @default 1000 */
    purgeBatchSize: z.number().int().positive().max(100_000).default(1_000),
    /** Where a failed automatic purge is reported (warn). @default silent */
    logger: loggerSchema.optional(),
  })
  .strict();

/** Options of {@link PostgresDedupStore}. */
export type PostgresDedupOptions = z.input<typeof postgresDedupOptionsSchema>;

/** The dedup key of a delivery: each consumer group gets its own effect. */
export function dedupKey(group: string, id: string): string {
  return `${group}:${id}`;
}

/**
 * Processed-message marks in PostgreSQL. Two ways to use it:
 *
 * - **Exactly-once effects** (the point of this store): call {@link markProcessed} with the
 *   client of your handler's own transaction, before or after the business write, and commit
 *   both together; or let {@link exactlyOnce} wrap the handler. A crash between commit and ack
 *   makes the broker redeliver, and the mark (committed with the effect) turns the redelivery
 *   into a no-op. A crash before commit rolls back both.
 * - As a core {@link DedupStore} for `idempotent(store)` (leases fenced by the holder's token,
 *   renewed while the handler runs, + done marks): at-least-once effects, like the Redis store,
 *   but no extra infrastructure if you already run PostgreSQL.
 *
 * Expired rows are purged automatically (see `purgeIntervalMs`), in batches of
 * `purgeBatchSize` rows.
 */
export class PostgresDedupStore implements DedupStore {
  readonly #db: SqlExecutor;
  readonly #table: string;
  readonly #ttlMs: number;
  readonly #purgeIntervalMs: number;
  readonly #purgeBatchSize: number;
  readonly #logger: Logger | undefined;
  #lastPurge = Date.now();
  #purging = false;

  /**
   * `db` runs the lease and purge statements: a `pg.Pool` is typical (not a client you also use
   * for transactions: a background purge would run inside them).
   */
  constructor(db: SqlExecutor, options: PostgresDedupOptions = {}) {
    const o = parseOptions(postgresDedupOptionsSchema, options, 'PostgresDedupStore');
    this.#db = db;
    this.#table = qualified(o.schema, o.dedupTable);
    this.#ttlMs = o.ttlMs;
    this.#purgeIntervalMs = o.purgeIntervalMs;
    this.#purgeBatchSize = o.purgeBatchSize;
    this.#logger = o.logger;
  }

  /**
   * Writes the done mark for `key` inside `tx` (the handler's transaction). Returns `false` when
   * the key was already processed, in which case roll back and skip the effect. A concurrent
   * transaction marking the same key waits on the row lock until the first one ends, then sees
   * its outcome: exactly one of them returns `true` and commits.
   */
  async markProcessed(tx: SqlExecutor, key: string, ttlMs: number = this.#ttlMs): Promise<boolean> {
    let rows: unknown[];
    try {
      rows = await queryRows(
        tx,
        `INSERT INTO ${this.#table} AS d (key, state, expires_at)
         VALUES ($1, 'done', now() + $2 * interval '1 millisecond')
         ON CONFLICT (key) DO UPDATE SET state = 'done', token = NULL, expires_at = EXCLUDED.expires_at, updated_at = clock_timestamp()
         WHERE d.state <> 'done' OR d.expires_at <= now()
         RETURNING 1`,
        [key, ttlMs],
      );
    } catch (err) {
      throw toPgMqError(err, 'dedup markProcessed failed');
    }
    this.#maybePurge();
    return rows.length === 1;
  }

  /** Whether `key` has a live done mark (read-only; for diagnostics and tests). */
  async isProcessed(key: string): Promise<boolean> {
    const rows = await queryRows(this.#db, `SELECT 1 FROM ${this.#table} WHERE key = $1 AND state = 'done' AND expires_at > now()`, [key]);
    return rows.length === 1;
  }

  async begin(key: string, leaseMs: number): Promise<BeginResult> {
    const token = randomUUID();
    let row: { acquired: boolean; state: string | null } | undefined;
    try {
      const rows = await queryRows<{ acquired: boolean; state: string | null }>(
        this.#db,
        `WITH taken AS (
           INSERT INTO ${this.#table} AS d (key, state, token, expires_at)
           VALUES ($1, 'processing', $3, now() + $2 * interval '1 millisecond')
           ON CONFLICT (key) DO UPDATE SET state = 'processing', token = EXCLUDED.token, expires_at = EXCLUDED.expires_at, updated_at = clock_timestamp()
           WHERE d.expires_at <= now()
           RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM taken) AS acquired,
                (SELECT state FROM ${this.#table} WHERE key = $1) AS state`,
        [key, leaseMs, token],
      );
      row = rows[0];
    } catch (err) {
      throw toPgMqError(err, 'dedup begin failed');
    }
    this.#maybePurge();
    if (row?.acquired) return { state: 'acquired', token };
    return row?.state === 'done' ? { state: 'duplicate' } : { state: 'busy' };
  }

  async renew(key: string, token: string, leaseMs: number): Promise<boolean> {
    try {
      const result = await this.#db.query(
        `UPDATE ${this.#table} SET expires_at = now() + $3 * interval '1 millisecond', updated_at = clock_timestamp()
         WHERE key = $1 AND state = 'processing' AND token = $2 AND expires_at > now()`,
        [key, token, leaseMs],
      );
      return (result.rowCount ?? 0) === 1;
    } catch (err) {
      throw toPgMqError(err, 'dedup renew failed');
    }
  }

  /**
   * Turns the holder's lease into a done mark. Writes only while the row is still this holder's
   * lease, or expired (nobody took the key over); `false` leaves another holder's lease or done
   * mark as it is.
   */
  async complete(key: string, token: string, ttlMs: number): Promise<boolean> {
    let rows: unknown[];
    try {
      rows = await queryRows(
        this.#db,
        `INSERT INTO ${this.#table} AS d (key, state, expires_at)
         VALUES ($1, 'done', now() + $3 * interval '1 millisecond')
         ON CONFLICT (key) DO UPDATE SET state = 'done', token = NULL, expires_at = EXCLUDED.expires_at, updated_at = clock_timestamp()
         WHERE (d.state = 'processing' AND d.token = $2) OR d.expires_at <= now()
         RETURNING 1`,
        [key, token, ttlMs],
      );
    } catch (err) {
      throw toPgMqError(err, 'dedup complete failed');
    }
    this.#maybePurge();
    return rows.length === 1;
  }

  async release(key: string, token: string): Promise<boolean> {
    try {
      const result = await this.#db.query(`DELETE FROM ${this.#table} WHERE key = $1 AND state = 'processing' AND token = $2`, [key, token]);
      return (result.rowCount ?? 0) === 1;
    } catch (err) {
      throw toPgMqError(err, 'dedup release failed');
    }
  }

  /**
   * Deletes expired marks and leases, at most `batchSize` per statement (`SKIP LOCKED`, so it
   * never waits on a row a handler is marking) and at most `maxBatches` statements; returns the
   * count. Runs automatically (see `purgeIntervalMs`); call it yourself when that is off.
   */
  async purgeExpired(batchSize = this.#purgeBatchSize, maxBatches = Number.POSITIVE_INFINITY): Promise<number> {
    let total = 0;
    for (let batch = 0; batch < maxBatches; batch += 1) {
      const result = await this.#db.query(
        `DELETE FROM ${this.#table} WHERE key IN (SELECT key FROM ${this.#table} WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`,
        [batchSize],
      );
      const n = result.rowCount ?? 0;
      total += n;
      if (n < batchSize) break;
    }
    return total;
  }

  /** Starts a background purge when the interval has passed since the last one (one at a time). */
  #maybePurge(): void {
    if (this.#purgeIntervalMs === 0 || this.#purging) return;
    const now = Date.now();
    if (now - this.#lastPurge < this.#purgeIntervalMs) return;
    this.#lastPurge = now;
    this.#purging = true;
    this.purgeExpired(this.#purgeBatchSize, PURGE_MAX_BATCHES)
      .catch((err: unknown) => this.#logger?.warn({ err }, 'purging expired dedup marks failed; retrying after the interval'))
      .finally(() => {
        this.#purging = false;
      });
  }
}

/** A handler that also receives the open transaction its effect must use. */
export type TransactionalHandler<T, C extends SqlExecutor = pg.PoolClient> = (delivery: Delivery<T>, tx: C) => Promise<void>;

const exactlyOnceOptionsSchema = z
  .object({
    keyOf: z.custom<(delivery: Delivery<never>) => string>(isFunction, 'must be a function').optional(),
    ttlMs: z.number().int().positive().optional(),
  })
  .strict();

/** Options of {@link exactlyOnce} (validated; unknown keys rejected). */
export interface ExactlyOnceOptions<T> {
  /** Dedup key of a delivery. @default `${group}:${id}` */
  keyOf?: (delivery: Delivery<T>) => string;
  /** How long the done mark is kept, in ms. @default the store's ttlMs (7 days) */
  ttlMs?: number;
}

/** Something that lends a client for one transaction: a `pg.Pool`. */
export interface ClientSource<C extends SqlExecutor> {
  connect(): Promise<
    C & {
      release(err?: Error | boolean): void;
      on?(event: 'error', listener: (err: Error) => void): unknown;
      off?(event: 'error', listener: (err: Error) => void): unknown;
    }
  >;
}

/**
 * Wraps a handler so that its database effect and the processed mark commit in one transaction:
 * `BEGIN` → mark (skip if already processed) → your handler with the transaction → `COMMIT`. A
 * throwing handler rolls back both, so the retry runs the effect again from scratch. So does a
 * handler that hands its message back with `nack()` ("not ready yet") or `deadLetter()`: the message
 * was not processed, so neither its writes nor the mark commit, and the redelivery (or a replay
 * from the dead-letter topic) runs the effect. The returned handler acks after the commit (core's
 * default), so a crash between commit and ack only causes a redelivery that is skipped. Do not
 * `ack()` inside the handler: an ack before the commit loses the effect if the commit fails.
 */
export function exactlyOnce<T, C extends SqlExecutor = pg.PoolClient>(
  pool: ClientSource<C>,
  store: PostgresDedupStore,
  handler: TransactionalHandler<T, C>,
  options: ExactlyOnceOptions<T> = {},
): Handler<T> {
  parseOptions(exactlyOnceOptionsSchema, options, 'exactlyOnce');
  const keyOf = options.keyOf ?? ((d: Delivery<T>) => dedupKey(d.group, d.id));
  return async (delivery) => {
    const client = await pool.connect();
    let broken: Error | undefined;
    // A connection lost between two queries is emitted on the checked-out client; without a
    // listener that would crash the process. The next query fails and the delivery is retried.
    const onError = (err: Error): void => {
      broken = err;
    };
    client.on?.('error', onError);
    try {
      await client.query('BEGIN');
      const fresh = await store.markProcessed(client, keyOf(delivery), options.ttlMs);
      if (!fresh) {
        await client.query('ROLLBACK');
        return;
      }
      await handler(delivery, client);
      // Handed back: the effect did not happen, so the mark must not commit either.
      const handedBack = delivery.settlement === 'nack' || delivery.settlement === 'dead-letter';
      await client.query(handedBack ? 'ROLLBACK' : 'COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
        broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
      });
      throw err;
    } finally {
      client.off?.('error', onError);
      client.release(broken ?? false);
    }
  };
}
