/** The example's tables, typed for Kysely, and their creation (idempotent). */
import { sql, type Generated, type Kysely } from 'kysely';

export interface Database {
  example_kysely_orders: { id: string; customer_id: string; total_cents: number; created_at: Generated<Date> };
  example_kysely_order_items: { order_id: string; sku: string; quantity: number; price_cents: number };
}

/** The outbox table of this example (`postgresOutbox`'s `table` option; its dedup table is beside it). */
export const OUTBOX_TABLE = 'example_kysely_outbox';

export async function createTables(db: Kysely<Database>): Promise<void> {
  await db.schema
    .createTable('example_kysely_orders')
    .ifNotExists()
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('total_cents', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createTable('example_kysely_order_items')
    .ifNotExists()
    .addColumn('order_id', 'text', (c) => c.notNull().references('example_kysely_orders.id'))
    .addColumn('sku', 'text', (c) => c.notNull())
    .addColumn('quantity', 'integer', (c) => c.notNull().check(sql`quantity > 0`))
    .addColumn('price_cents', 'integer', (c) => c.notNull())
    .execute();
}
