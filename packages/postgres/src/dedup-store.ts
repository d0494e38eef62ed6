import type pg from 'pg';
import type { BeginResult, DedupStore, Delivery, Handler } from '@mqkit/core';
import { toPgMqError } from './errors.ts';
import { queryRows, type SqlExecutor } from './executor.ts';
import { qualified } from './identifiers.ts';
import { parseTableOptions, type TableOptions } from './options.ts';

/** Options of {@link PostgresDedupStore}. */
export interface PostgresDedupOptions extends Pick<TableOptions, 'schema' | 'dedupTable'> {
  /** How long a done mark is kept by {@link PostgresDedupStore.markProcessed}. @default 7 days */
  ttlMs?: number;
}

/** The dedup key of a delivery: each consumer group gets its own effect. */
export function dedupKey(group: string, id: string): string {
  return `${group}:${id}`;
}

const DAY = 24 * 3600_000;

/**
 * Processed-message marks in PostgreSQL. Two ways to use it:
 *
 * - **Exactly-once effects** (the point of this store): call {@link markProcessed} with the
 *   client of your handler's own transaction, before or after the business write, and commit
 *   both together; or let {@link exactlyOnce} wrap the handler. A crash between commit and ack
 *   makes the broker redeliver, and the mark (committed with the effect) turns the redelivery
 *   into a no-op. A crash before commit rolls back both.
 * - As a core {@link DedupStore} for `idempotent(store)` (leases + done marks): at-least-once
 *   effects, like the Redis store, but no extra infrastructure if you already run PostgreSQL.
 */
export class PostgresDedupStore implements DedupStore {
  readonly #db: SqlExecutor;
  readonly #table: string;
  readonly #ttlMs: number;

  /** `db` runs the lease statements of the DedupStore protocol: a `pg.Pool` is typical. */
  constructor(db: SqlExecutor, options: PostgresDedupOptions = {}) {
    const o = parseTableOptions({ schema: options.schema, dedupTable: options.dedupTable });
    this.#db = db;
    this.#table = qualified(o.schema, o.dedupTable);
    this.#ttlMs = options.ttlMs ?? 7 * DAY;
  }

  /**
   * Writes the done mark for `key` inside `tx` (the handler's transaction). Returns `false` when
   * the key was already processed, in which case roll back and skip the effect. A concurrent
   * transaction marking the same key waits on the row lock until the first one ends, then sees
   * its outcome: exactly one of them returns `true` and commits.
   */
  async markProcessed(tx: SqlExecutor, key: string, ttlMs: number = this.#ttlMs): Promise<boolean> {
    try {
      const rows = await queryRows(
        tx,
        `INSERT INTO ${this.#table} AS d (key, state, expires_at)
         VALUES ($1, 'done', now() + $2 * interval '1 millisecond')
         ON CONFLICT (key) DO UPDATE SET state = 'done', expires_at = EXCLUDED.expires_at, updated_at = clock_timestamp()
         WHERE d.state <> 'done' OR d.expires_at <= now()
         RETURNING 1`,
        [key, ttlMs],
      );
      return rows.length === 1;
    } catch (err) {
      throw toPgMqError(err, 'dedup markProcessed failed');
    }
  }

  /** Whether `key` has a live done mark (read-only; for diagnostics and tests). */
  async isProcessed(key: string): Promise<boolean> {
    const rows = await queryRows(this.#db, `SELECT 1 FROM ${this.#table} WHERE key = $1 AND state = 'done' AND expires_at > now()`, [key]);
    return rows.length === 1;
  }

  async begin(key: string, leaseMs: number): Promise<BeginResult> {
    try {
      const rows = await queryRows<{ acquired: boolean; state: string | null }>(
        this.#db,
        `WITH taken AS (
           INSERT INTO ${this.#table} AS d (key, state, expires_at)
           VALUES ($1, 'processing', now() + $2 * interval '1 millisecond')
           ON CONFLICT (key) DO UPDATE SET state = 'processing', expires_at = EXCLUDED.expires_at, updated_at = clock_timestamp()
           WHERE d.expires_at <= now()
           RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM taken) AS acquired,
                (SELECT state FROM ${this.#table} WHERE key = $1) AS state`,
        [key, leaseMs],
      );
      const row = rows[0];
      if (row?.acquired) return 'acquired';
      return row?.state === 'done' ? 'duplicate' : 'busy';
    } catch (err) {
      throw toPgMqError(err, 'dedup begin failed');
    }
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    try {
      await this.#db.query(
        `INSERT INTO ${this.#table} AS d (key, state, expires_at)
         VALUES ($1, 'done', now() + $2 * interval '1 millisecond')
         ON CONFLICT (key) DO UPDATE SET state = 'done', expires_at = EXCLUDED.expires_at, updated_at = clock_timestamp()`,
        [key, ttlMs],
      );
    } catch (err) {
      throw toPgMqError(err, 'dedup complete failed');
    }
  }

  async release(key: string): Promise<void> {
    try {
      await this.#db.query(`DELETE FROM ${this.#table} WHERE key = $1 AND state = 'processing'`, [key]);
    } catch (err) {
      throw toPgMqError(err, 'dedup release failed');
    }
  }

  /** Deletes expired marks and leases, at most `batchSize` per statement; returns the count. */
  async purgeExpired(batchSize = 5_000): Promise<number> {
    let total = 0;
    for (;;) {
      const result = await this.#db.query(
        `DELETE FROM ${this.#table} WHERE key IN (SELECT key FROM ${this.#table} WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`,
        [batchSize],
      );
      const n = result.rowCount ?? 0;
      total += n;
      if (n < batchSize) return total;
    }
  }
}

/** A handler that also receives the open transaction its effect must use. */
export type TransactionalHandler<T, C extends SqlExecutor = pg.PoolClient> = (delivery: Delivery<T>, tx: C) => Promise<void>;

/** Options of {@link exactlyOnce}. */
export interface ExactlyOnceOptions<T> {
  /** Dedup key of a delivery. @default `${group}:${id}` */
  keyOf?: (delivery: Delivery<T>) => string;
  /** How long the done mark is kept. @default the store's ttlMs (7 days) */
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
 * throwing handler rolls back both, so the retry runs the effect again from scratch. The returned
 * handler acks after the commit (core's default), so a crash between commit and ack only causes a
 * redelivery that is skipped.
 */
export function exactlyOnce<T, C extends SqlExecutor = pg.PoolClient>(
  pool: ClientSource<C>,
  store: PostgresDedupStore,
  handler: TransactionalHandler<T, C>,
  options: ExactlyOnceOptions<T> = {},
): Handler<T> {
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
      await client.query('COMMIT');
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
