import type { Client } from '@mqkit/core';
import { ORDERS_TOPIC, type OrderCreated } from './orders.ts';

/**
 * The order service's side: publish each order with reliable send. The message id is derived
 * from the order id, so a retry after an unknown outcome (or a duplicate submit) has the same id
 * and the consumer's dedup store absorbs it. The customer id is the key: one customer's orders
 * stay in order on brokers that keep key order.
 */
export async function placeOrder(client: Client, order: OrderCreated): Promise<string> {
  const receipt = await client.publish<OrderCreated>(ORDERS_TOPIC, order, {
    id: `order-created:${order.orderId}`,
    key: order.customerId,
    headers: { 'event-type': 'order.created' },
  });
  return receipt.id;
}
