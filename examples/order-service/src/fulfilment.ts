import type { Client, Subscription } from '@mqkit/core';
import { exactlyOnce, type PostgresDedupStore } from '@mqkit/postgres';
import type pg from 'pg';
import { ORDER_CREATED, type OrderCreated } from './orders.ts';
import { TABLES } from './schema.ts';

/**
 * The fulfilment consumer: creates one shipment per order. Its effect (the shipment row) and the
 * "processed" mark are committed in one transaction by `exactlyOnce`, so a redelivery (after a
 * crash between commit and ack, or an outbox relay republishing) never ships twice.
 */
export function startFulfilment(
  client: Client,
  pool: pg.Pool,
  store: PostgresDedupStore,
  onShipped: (order: OrderCreated) => void = () => {},
): Promise<Subscription> {
  return client.subscribe<OrderCreated>(ORDER_CREATED, {
    group: 'fulfilment',
    ordered: true,
    concurrency: 8,
    retry: { maxAttempts: 5 },
    handler: exactlyOnce(pool, store, async (msg, tx) => {
      const items = msg.payload.items.reduce((n, i) => n + i.quantity, 0);
      await tx.query(`INSERT INTO ${TABLES.shipments} (order_id, items) VALUES ($1, $2)`, [msg.payload.orderId, items]);
      onShipped(msg.payload);
    }),
  });
}
