/**
 * Placing an order with Kysely and the mqkit outbox: the order row, its items and the
 * `order-created` message are written in **one Kysely transaction**. The relay publishes the
 * message after the commit; a rolled-back transaction leaves no message behind.
 */
import type { Outbox } from '@mqkit/core';
import type { SqlExecutor } from '@mqkit/postgres';
import { CompiledQuery, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.ts';

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
 * The outbox writes through this: Kysely's raw query runner on the transaction (same `$1`
 * placeholders as pg), so the outbox row is part of the transaction. Never give the outbox the
 * pool or `db` itself: its insert would commit on its own.
 */
export const kyselyExecutor = <DB>(trx: Transaction<DB>): SqlExecutor => ({
  query: (text, values = []) => trx.executeQuery(CompiledQuery.raw(text, values)),
});

/** Writes the order, its message and its items together, or nothing (e.g. an item with quantity 0). */
export async function placeOrder(db: Kysely<Database>, outbox: Outbox<SqlExecutor>, order: NewOrder): Promise<OrderCreated> {
  const totalCents = order.items.reduce((sum, i) => sum + i.quantity * i.priceCents, 0);
  const event: OrderCreated = { orderId: order.id, customerId: order.customerId, totalCents };
  await db.transaction().execute(async (trx) => {
    await trx.insertInto('example_kysely_orders').values({ id: order.id, customer_id: order.customerId, total_cents: totalCents }).execute();
    // A deterministic id: a retried request re-placing the same order carries the same dedup key.
    await outbox.enqueue(kyselyExecutor(trx), ORDER_CREATED, event, { id: `order-created:${order.id}`, key: order.customerId });
    await trx
      .insertInto('example_kysely_order_items')
      .values(order.items.map((i) => ({ order_id: order.id, sku: i.sku, quantity: i.quantity, price_cents: i.priceCents })))
      .execute();
  });
  return event;
}
