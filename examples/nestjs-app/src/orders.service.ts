import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ORDER_STORE, type OrderStore } from './order-store.ts';
import { NAMES } from './tokens.ts';
import type { Names, NewOrder, Order } from './orders.ts';

/** Places orders: the order row and its order-created message commit together, or neither does. */
@Injectable()
export class OrdersService {
  readonly #store: OrderStore;
  readonly #names: Names;

  constructor(@Inject(ORDER_STORE) store: OrderStore, @Inject(NAMES) names: Names) {
    this.#store = store;
    this.#names = names;
  }

  async place(input: NewOrder): Promise<Order> {
    const order: Order = {
      ...input,
      orderId: randomUUID(),
      totalCents: input.items.reduce((sum, i) => sum + i.quantity * i.priceCents, 0),
    };
    await this.#store.transaction(async (tx) => {
      await this.#store.insertOrder(tx, order);
      // Same transaction: the message exists exactly when the order does. The relay sends it;
      // its id (derived from the order) lets consumers drop a copy sent twice.
      await this.#store.outbox.enqueue(tx, this.#names.orderCreated, order, { id: `order-created:${order.orderId}`, key: order.customerId });
    });
    return order;
  }
}
