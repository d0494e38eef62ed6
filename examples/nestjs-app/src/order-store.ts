import { MemoryDedupStore, Outbox, OutboxRelay, type Client, type DedupStore } from '@mqkit/core';
import { MemoryOutboxStore, type MemoryTx } from '@mqkit/testing';
import type { BeforeApplicationShutdown, OnApplicationBootstrap } from '@nestjs/common';
import type { Order } from './orders.ts';

/**
 * Where orders and shipments live, and the outbox that writes messages in the same transaction.
 * `PgOrderStore` is the real one; `MemoryOrderStore` serves the unit tests and the demo on
 * `memory://` without a database. The service code is the same for both.
 */
export interface OrderStore<Tx = unknown> {
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<R>(fn: (tx: Tx) => Promise<R>): Promise<R>;
  /** Writes the order row in `tx`. */
  insertOrder(tx: Tx, order: Order): Promise<void>;
  /** Writes messages in `tx`: they are sent (by the relay) only if `tx` commits. */
  readonly outbox: Outbox<Tx>;
  /** Dedup marks of the consumer (`idempotent()`). */
  readonly dedup: DedupStore;
  /** Records a shipment; a second one for the same order is refused (the effect must happen once). */
  recordShipment(order: Order): Promise<void>;
  /** Order ids that were shipped. */
  shipped(): Promise<string[]>;
  /** Order ids stored. */
  orders(): Promise<string[]>;
}

/** Injection token of the {@link OrderStore}. */
export const ORDER_STORE = Symbol('ORDER_STORE');

/** {@link OrderStore} in memory: the outbox store of `@mqkit/testing` with the relay running. */
export class MemoryOrderStore implements OrderStore<MemoryTx>, OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly #store = new MemoryOutboxStore();
  readonly #orders = new Map<string, Order>();
  readonly #staged = new WeakMap<MemoryTx, Order[]>();
  readonly #shipped = new Set<string>();
  readonly outbox: Outbox<MemoryTx>;
  readonly relay: OutboxRelay<MemoryTx>;
  readonly dedup = new MemoryDedupStore();

  constructor(client: Client) {
    this.outbox = new Outbox(this.#store, client);
    this.relay = new OutboxRelay(this.#store, client, { pollIntervalMs: 50 });
  }

  onApplicationBootstrap(): void {
    this.relay.start();
  }

  /** The relay publishes through the client: stop it before MqkitModule closes the client. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.relay.stop();
  }

  async transaction<R>(fn: (tx: MemoryTx) => Promise<R>): Promise<R> {
    let staged: Order[] = [];
    const result = await this.#store.transaction(async (tx) => {
      const r = await fn(tx);
      staged = this.#staged.get(tx) ?? [];
      return r;
    });
    for (const order of staged) this.#orders.set(order.orderId, order);
    return result;
  }

  async insertOrder(tx: MemoryTx, order: Order): Promise<void> {
    if (this.#orders.has(order.orderId)) throw new Error(`order ${order.orderId} exists`);
    this.#staged.set(tx, [...(this.#staged.get(tx) ?? []), order]);
  }

  async recordShipment(order: Order): Promise<void> {
    if (this.#shipped.has(order.orderId)) throw new Error(`order ${order.orderId} shipped twice`);
    this.#shipped.add(order.orderId);
  }

  async shipped(): Promise<string[]> {
    return [...this.#shipped];
  }

  async orders(): Promise<string[]> {
    return [...this.#orders.keys()];
  }
}
