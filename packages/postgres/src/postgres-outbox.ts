import pg from 'pg';
import { Outbox, OutboxRelay, type Client, type OutboxRelayOptions } from '@mqkit/core';
import { configError, parseOptions, redactUrl } from '@mqkit/core/driver';
import { z } from 'zod';
import type { SqlExecutor } from './executor.ts';
import { outboxOptionsSchema, parseOutboxOptions, pgConnectionString } from './options.ts';
import { PostgresOutboxStore, type PostgresOutboxStoreOptions } from './outbox-store.ts';
import { migrate } from './schema.ts';

/** Options of {@link postgresOutbox}. */
export interface PostgresOutboxSetup extends PostgresOutboxStoreOptions {
  /** An existing pool (yours to close). Give this or `url`. */
  pool?: pg.Pool;
  /**
   * `postgres://user:pass@host:5432/db?table=orders_outbox&onPublished=delete`: a pool is made
   * (and closed by `close()`). Query parameters that are outbox options are read as such; the
   * rest go to `pg`.
   */
  url?: string;
  /**
   * Relay tuning (batch size, lease, poll fallback, backoff, `maxAttempts` before a row is dead),
   * validated by core's `OutboxRelay`.
   */
  relay?: OutboxRelayOptions;
}

/** The setup's own keys, plus the store's: unknown keys are refused (a typo must not pass). */
const setupSchema = outboxOptionsSchema
  .partial()
  .extend({
    pool: z.custom<pg.Pool>((v) => typeof (v as pg.Pool | undefined)?.query === 'function', 'must be a pg Pool').optional(),
    url: z.string().optional(),
    relay: z.record(z.string(), z.unknown()).optional(),
    logger: z.custom<NonNullable<PostgresOutboxStoreOptions['logger']>>((v) => typeof (v as { warn?: unknown } | undefined)?.warn === 'function', 'must be a logger').optional(),
  })
  .strict();

/** What {@link postgresOutbox} assembles. */
export interface PostgresOutbox {
  readonly pool: pg.Pool;
  readonly store: PostgresOutboxStore;
  /** Writes messages in your transaction: `outbox.enqueue(txClient, topic, payload, options)`. */
  readonly outbox: Outbox<SqlExecutor>;
  /** Moves committed rows to the broker; call `relay.start()` in the processes that should. */
  readonly relay: OutboxRelay<SqlExecutor>;
  /** Creates the tables if needed, or upgrades them (idempotent). */
  migrate(): Promise<void>;
  /** Stops the relay, stops LISTENing and, if it made the pool, closes it. */
  close(): Promise<void>;
}

/**
 * The transactional outbox on PostgreSQL, wired to an mqkit client:
 *
 * ```ts
 * const mq = await connect(process.env.MQ_URL!);
 * const box = postgresOutbox(mq, { url: process.env.DATABASE_URL });
 * await box.migrate();
 * box.relay.start();
 * const tx = await box.pool.connect();
 * await tx.query('BEGIN');
 * await tx.query('INSERT INTO orders …');
 * await box.outbox.enqueue(tx, 'order.created', order, { key: order.customerId });
 * await tx.query('COMMIT');
 * ```
 */
export function postgresOutbox(client: Client, setup: PostgresOutboxSetup): PostgresOutbox {
  parseOptions(setupSchema, setup, 'postgresOutbox');
  const { pool: given, url, relay: relayOptions, logger, ...rest } = setup;
  if (!given && !url) throw configError('postgresOutbox: give a pg pool or a postgres:// url');
  let pool = given;
  if (!pool) {
    const u = url!;
    if (!/^postgres(ql)?:\/\//i.test(u)) throw configError('postgresOutbox: the url must start with postgres://', u);
    pool = new pg.Pool({ connectionString: pgConnectionString(u), max: 10 });
    // An idle client losing its connection emits on the pool; without a listener that would crash.
    pool.on('error', (err) => logger?.warn({ err: err.message, url: redactUrl(u) }, 'idle postgres client failed'));
  }
  const options = parseOutboxOptions(rest, url);
  const store = new PostgresOutboxStore(pool, { ...options, ...(logger ? { logger } : {}) });
  const relay = new OutboxRelay(store, client, { ...(logger ? { logger } : {}), ...relayOptions });
  const ownsPool = !given;
  const thePool = pool;
  return {
    pool: thePool,
    store,
    outbox: new Outbox(store, client),
    relay,
    migrate: () => migrate(thePool, options),
    close: async () => {
      await relay.stop();
      await store.close();
      if (ownsPool) await thePool.end();
    },
  };
}
