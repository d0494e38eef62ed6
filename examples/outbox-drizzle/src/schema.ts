/** The example's tables as Drizzle schema, and their creation (idempotent). */
import { sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { check, integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

export const orders = pgTable('example_drizzle_orders', {
  id: text('id').primaryKey(),
  customerId: text('customer_id').notNull(),
  totalCents: integer('total_cents').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

export const orderItems = pgTable(
  'example_drizzle_order_items',
  {
    orderId: text('order_id').notNull().references(() => orders.id),
    sku: text('sku').notNull(),
    quantity: integer('quantity').notNull(),
    priceCents: integer('price_cents').notNull(),
  },
  (t) => [check('example_drizzle_quantity_positive', sql`${t.quantity} > 0`)],
);

/** The outbox table of this example (`postgresOutbox`'s `table` option). */
export const OUTBOX_TABLE = 'example_drizzle_outbox';

/**
 * Creates the tables if missing. A real project generates this with drizzle-kit from the schema
 * above (`drizzle-kit generate`); the example keeps to one dependency.
 */
export async function createTables(db: NodePgDatabase): Promise<void> {
  await db.execute(sql`CREATE TABLE IF NOT EXISTS example_drizzle_orders (
    id text PRIMARY KEY, customer_id text NOT NULL, total_cents integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
  await db.execute(sql`CREATE TABLE IF NOT EXISTS example_drizzle_order_items (
    order_id text NOT NULL REFERENCES example_drizzle_orders (id), sku text NOT NULL,
    quantity integer NOT NULL CONSTRAINT example_drizzle_quantity_positive CHECK (quantity > 0), price_cents integer NOT NULL)`);
}
