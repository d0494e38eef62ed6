/**
 * Placing an order with Drizzle and the mqkit outbox: the order row, its items and the
 * `order-created` message are written in **one Drizzle transaction**. The relay publishes the
 * message after the commit; a rolled-back transaction leaves no message behind.
 */
import type { Outbox } from '@mqkit/core';
import type { SqlExecutor } from '@mqkit/postgres';
import { sql, type SQL } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { orderItems, orders } from './schema.ts';

export const ORDER_CREATED = 'order-created';

export interface NewOrder {
  id: string;
  customerId: string;
  items: Array<{ sku: string; quantity: number; priceCents: number }>;
}

export interface OrderCreated {
  orderId: string;
  customerId: string;
  totalCents: number;
}

/**
 * A `$1 … $n` statement as Drizzle SQL. Each value goes in as one bound parameter: `sql.param`,
 * not `` sql`${value}` ``, which would spread an array value into a list `($1, $2, …)` (the outbox
 * binds arrays).
 */
export const toDrizzleSql = (text: string, values: readonly unknown[] = []): SQL =>
  sql.join(text.split(/\$(\d+)/).map((part, i) => (i % 2 === 1 ? sql.param(values[Number(part) - 1]) : sql.raw(part))));

/**
 * The outbox writes through this: statements run on the Drizzle transaction, so the outbox row is
 * part of it. Never give the outbox the pool or `db` itself: its insert would commit on its own.
 */
export const drizzleExecutor = (tx: { execute(query: SQL): Promise<{ rows: unknown[] }> }): SqlExecutor => ({
  query: (text, values) => tx.execute(toDrizzleSql(text, values)),
});

/** Writes the order, its message and its items together, or nothing (e.g. an item with quantity 0). */
export async function placeOrder(db: NodePgDatabase, outbox: Outbox<SqlExecutor>, order: NewOrder): Promise<OrderCreated> {
  const totalCents = order.items.reduce((sum, i) => sum + i.quantity * i.priceCents, 0);
  const event: OrderCreated = { orderId: order.id, customerId: order.customerId, totalCents };
  await db.transaction(async (tx) => {
    await tx.insert(orders).values({ id: order.id, customerId: order.customerId, totalCents });
    // A deterministic id: a retried request re-placing the same order carries the same dedup key.
    await outbox.enqueue(drizzleExecutor(tx), ORDER_CREATED, event, { id: `order-created:${order.id}`, key: order.customerId });
    await tx.insert(orderItems).values(order.items.map((i) => ({ orderId: order.id, sku: i.sku, quantity: i.quantity, priceCents: i.priceCents })));
  });
  return event;
}
