import { idempotent, type Delivery } from '@mqkit/core';
import { Subscribe } from '@mqkit/nestjs';
import { Inject, Injectable } from '@nestjs/common';
import { ORDER_STORE, type OrderStore } from './order-store.ts';
import type { Names, Order } from './orders.ts';
import { NAMES } from './tokens.ts';

/** The carrier's booking API (an HTTP call in real life): it fails now and then. */
@Injectable()
export class Carrier {
  /** Bookings made, by order id (what the tests check). */
  readonly bookings = new Map<string, number>();
  /** Test hook: how many of the next calls fail as if the carrier timed out. */
  failNext = 0;
  /** Test hook: calls wait for this (a slow carrier) and count in `calls` meanwhile. */
  hold: Promise<void> | undefined;
  calls = 0;

  async book(order: Order): Promise<void> {
    this.calls += 1;
    await this.hold;
    if (this.failNext > 0) {
      this.failNext -= 1;
      throw new Error('carrier timed out');
    }
    this.bookings.set(order.orderId, (this.bookings.get(order.orderId) ?? 0) + 1);
  }
}

/**
 * Ships each order once. `idempotent()` drops copies of a message already handled (the broker
 * and the relay deliver at least once); a failure (the carrier timing out) throws, so the message
 * is retried with backoff and, after `maxAttempts`, dead-lettered to `<topic>-dlq`.
 */
@Injectable()
export class Fulfilment {
  readonly store: OrderStore;
  readonly carrier: Carrier;
  readonly names: Names;

  constructor(@Inject(ORDER_STORE) store: OrderStore, @Inject(Carrier) carrier: Carrier, @Inject(NAMES) names: Names) {
    this.store = store;
    this.carrier = carrier;
    this.names = names;
  }

  // Topic and options as functions of the instance: the names and the dedup store come from injection.
  @Subscribe((self: Fulfilment) => self.names.orderCreated, (self: Fulfilment) => ({
    group: self.names.fulfilment,
    retry: { maxAttempts: 5, initialDelayMs: 100, maxDelayMs: 2_000 },
    middleware: [idempotent(self.store.dedup)],
  }))
  async ship(delivery: Delivery<Order>): Promise<void> {
    await this.carrier.book(delivery.payload);
    await this.store.recordShipment(delivery.payload);
  }
}
