import { randomUUID } from 'node:crypto';
import type { Outbox } from '@mqkit/core';
import type { SqlExecutor } from '@mqkit/postgres';
import type pg from 'pg';
import { EVENT_TYPE_HEADER, ORDER_CREATED, type NewOrder, type OrderCreated } from './orders.ts';
import { TABLES } from './schema.ts';

/**
 * Creates an order: the order row and its `order.created` message are written in ONE database
 * transaction. If the insert fails, no message exists; if the commit succeeds, the relay will
 * publish the message even if this process dies the next instant.
 */
export async function createOrder(pool: pg.Pool, outbox: Outbox<SqlExecutor>, order: NewOrder): Promise<OrderCreated> {
  const event: OrderCreated = {
    orderId: `ord-${randomUUID()}`,
    customerId: order.customerId,
    items: order.items.map(({ sku, quantity }) => ({ sku, quantity })),
    totalCents: order.items.reduce((sum, i) => sum + i.quantity * i.priceCents, 0),
  };
  const tx = await pool.connect();
  try {
    await tx.query('BEGIN');
    await tx.query(`INSERT INTO ${TABLES.orders} (id, customer_id, total_cents) VALUES ($1, $2, $3)`, [
      event.orderId,
      event.customerId,
      event.totalCents,
    ]);
    // Keyed by customer: one customer's events are published and consumed in order.
    await outbox.enqueue(tx, ORDER_CREATED, event, {
      key: event.customerId,
      id: `${event.orderId}:created`,
      headers: { [EVENT_TYPE_HEADER]: 'order.created' },
    });
    await tx.query('COMMIT');
    return event;
  } catch (err) {
    await tx.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    tx.release();
  }
}
