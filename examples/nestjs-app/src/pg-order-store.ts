import type { Client, DedupStore, Outbox } from '@mqkit/core';
import { PostgresDedupStore, postgresOutbox, type PostgresOutbox, type SqlExecutor } from '@mqkit/postgres';
import type { BeforeApplicationShutdown, OnApplicationBootstrap, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type pg from 'pg';
import type { OrderStore } from './order-store.ts';
import type { Order } from './orders.ts';

/** Table names; `prefix` keeps several deployments (or test runs) apart in one database. */
export function tableNames(prefix = 'shop_') {
  return { orders: `${prefix}orders`, shipments: `${prefix}shipments`, outbox: `${prefix}outbox`, processed: `${prefix}processed` } as const;
}

/**
 * {@link OrderStore} on PostgreSQL: the order row and its outbox row in one `pg` transaction
 * (BEGIN … COMMIT on one pooled connection), the relay of `@mqkit/postgres` moving committed rows
 * to the broker, and the consumer's dedup marks in the same database.
 */
export class PgOrderStore implements OrderStore<pg.PoolClient>, OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  readonly tables: ReturnType<typeof tableNames>;
  readonly #box: PostgresOutbox;
  readonly dedup: DedupStore;

  constructor(client: Client, databaseUrl: string, prefix?: string) {
    this.tables = tableNames(prefix);
    this.#box = postgresOutbox(client, { url: databaseUrl, table: this.tables.outbox, dedupTable: this.tables.processed });
    this.dedup = new PostgresDedupStore(this.#box.pool, { dedupTable: this.tables.processed });
  }

  get outbox(): Outbox<pg.PoolClient> {
    return this.#box.outbox;
  }

  get pool(): pg.Pool {
    return this.#box.pool;
  }

  /** Tables first (idempotent), before anything can place an order. */
  async onModuleInit(): Promise<void> {
    await this.#box.migrate();
    await this.#box.pool.query(`
      CREATE TABLE IF NOT EXISTS ${this.tables.orders} (
        id text PRIMARY KEY, customer_id text NOT NULL, total_cents integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE IF NOT EXISTS ${this.tables.shipments} (
        order_id text PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now());`);
  }

  onApplicationBootstrap(): void {
    this.#box.relay.start();
  }

  /** The relay publishes through the client: stop it before MqkitModule closes the client. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.#box.relay.stop();
  }

  /** After MqkitModule drained the consumers (they use the pool until then). */
  async onApplicationShutdown(): Promise<void> {
    await this.#box.close();
  }

  async transaction<R>(fn: (tx: pg.PoolClient) => Promise<R>): Promise<R> {
    const tx = await this.#box.pool.connect();
    try {
      await tx.query('BEGIN');
      const result = await fn(tx);
      await tx.query('COMMIT');
      return result;
    } catch (err) {
      await tx.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      tx.release();
    }
  }

  async insertOrder(tx: SqlExecutor, order: Order): Promise<void> {
    await tx.query(`INSERT INTO ${this.tables.orders} (id, customer_id, total_cents) VALUES ($1, $2, $3)`, [order.orderId, order.customerId, order.totalCents]);
  }

  async recordShipment(order: Order): Promise<void> {
    // The primary key refuses a second shipment: idempotent() must keep the effect to one.
    await this.#box.pool.query(`INSERT INTO ${this.tables.shipments} (order_id) VALUES ($1)`, [order.orderId]);
  }

  async shipped(): Promise<string[]> {
    const { rows } = await this.#box.pool.query<{ order_id: string }>(`SELECT order_id FROM ${this.tables.shipments} ORDER BY order_id`);
    return rows.map((r) => r.order_id);
  }

  async orders(): Promise<string[]> {
    const { rows } = await this.#box.pool.query<{ id: string }>(`SELECT id FROM ${this.tables.orders} ORDER BY id`);
    return rows.map((r) => r.id);
  }
}
