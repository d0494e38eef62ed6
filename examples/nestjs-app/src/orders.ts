import { z } from 'zod';

/** What a client posts to `POST /orders`. */
export const newOrderSchema = z
  .object({
    customerId: z.string().min(1),
    items: z.array(z.object({ sku: z.string().min(1), quantity: z.number().int().positive(), priceCents: z.number().int().min(0) }).strict()).min(1),
  })
  .strict();

export type NewOrder = z.infer<typeof newOrderSchema>;

/** An accepted order: the row in `orders` and the payload of its order-created message. */
export interface Order extends NewOrder {
  readonly orderId: string;
  readonly totalCents: number;
}

/** Topic and group names (a deployment may prefix them, the integration tests make them unique). */
export interface Names {
  /** Topic of order-created messages. @default 'order.created' */
  readonly orderCreated: string;
  /** Consumer group of fulfilment. @default 'fulfilment' */
  readonly fulfilment: string;
}

export const DEFAULT_NAMES: Names = { orderCreated: 'order.created', fulfilment: 'fulfilment' };
