/** The order events both services agree on. */
export interface OrderCreated {
  orderId: string;
  customerId: string;
  amountCents: number;
}

export const ORDERS_TOPIC = 'orders';
export const ORDERS_DLQ = `${ORDERS_TOPIC}-dlq`;
