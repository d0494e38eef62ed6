import { migrate as migrateMqkit, type SqlExecutor } from '@mqkit/postgres';

/** The tables of this example; mqkit's outbox and dedup tables come from `@mqkit/postgres`. */
export const TABLES = {
  orders: 'example_orders',
  shipments: 'example_shipments',
  outbox: 'example_outbox',
  processed: 'example_processed',
} as const;

/** Creates the service's tables and mqkit's outbox/dedup tables (idempotent). */
export async function migrate(db: SqlExecutor): Promise<void> {
  await migrateMqkit(db, { table: TABLES.outbox, dedupTable: TABLES.processed });
  await db.query(`
    CREATE TABLE IF NOT EXISTS ${TABLES.orders} (
      id          text PRIMARY KEY,
      customer_id text NOT NULL,
      total_cents integer NOT NULL,
      created_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS ${TABLES.shipments} (
      order_id   text PRIMARY KEY,
      items      integer NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );`);
}
