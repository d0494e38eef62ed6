/** The order domain shared by the API side and the fulfilment consumer. */

/**
 * Topic of the `order.created` event, one per created order. Spelled with a dash: SQS queue and
 * SNS topic names allow no dots, and the service runs unchanged on every broker. ORDER_TOPIC
 * overrides it (on SQS: `order-created.fifo`, as per-key order needs a FIFO queue).
 */
export const ORDER_CREATED = process.env.ORDER_TOPIC ?? 'order-created';

/** Header naming the event type, for consumers that share a topic between event types. */
export const EVENT_TYPE_HEADER = 'event-type';

/** Payload of the `order.created` event. */
export interface OrderCreated {
  orderId: string;
  customerId: string;
  items: Array<{ sku: string; quantity: number }>;
  totalCents: number;
}

/** What a client posts to create an order. */
export interface NewOrder {
  customerId: string;
  items: Array<{ sku: string; quantity: number; priceCents: number }>;
}

/** Validates a request body; throws a readable error for a bad one. */
export function parseNewOrder(body: unknown): NewOrder {
  const b = body as Partial<NewOrder> | null;
  if (!b || typeof b.customerId !== 'string' || b.customerId.length === 0) throw new Error('customerId is required');
  if (!Array.isArray(b.items) || b.items.length === 0) throw new Error('items must be a non-empty array');
  for (const item of b.items) {
    if (typeof item?.sku !== 'string' || !Number.isInteger(item.quantity) || item.quantity <= 0 || !Number.isInteger(item.priceCents) || item.priceCents < 0) {
      throw new Error('each item needs sku, a positive integer quantity and an integer priceCents');
    }
  }
  return { customerId: b.customerId, items: b.items.map(({ sku, quantity, priceCents }) => ({ sku, quantity, priceCents })) };
}
