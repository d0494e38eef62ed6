/**
 * The NestJS example (examples/nestjs-app) with its PostgreSQL store: OrdersService writes the
 * order row and the order-created outbox row in one transaction (a failing transaction leaves
 * neither), the @mqkit/postgres relay publishes committed rows, and the consumer's idempotent()
 * marks live in PostgreSQL. Real PostgreSQL; the in-memory broker.
 */
import { Client } from '@mqkit/core';
import { memory, memoryBroker } from '@mqkit/testing';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { anOrder, startApp, type RunningApp } from '../../examples/nestjs-app/src/app.test-util.ts';
import type { Order } from '../../examples/nestjs-app/src/orders.ts';
import { PgOrderStore, tableNames } from '../../examples/nestjs-app/src/pg-order-store.ts';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueIdent, uniqueName } from '../src/names.ts';
import { waitFor } from '../src/wait.ts';

const { url: databaseUrl } = requireBroker('postgres');
const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
pool.on('error', () => {});
const prefixes: string[] = [];
const apps: RunningApp[] = [];

afterAll(async () => {
  await Promise.all(apps.map((a) => a.app.close().catch(() => {})));
  for (const prefix of prefixes) {
    const t = tableNames(prefix);
    await pool
      .query(`DROP TABLE IF EXISTS ${t.orders}, ${t.shipments}, ${t.outbox}_dead, ${t.processed}; DROP TABLE IF EXISTS ${t.outbox} CASCADE; DROP FUNCTION IF EXISTS "${t.outbox}_notify"()`)
      .catch(() => {});
  }
  await pool.end();
});

async function start(): Promise<{ r: RunningApp; name: string; tables: ReturnType<typeof tableNames> }> {
  const name = uniqueName('nest-pg');
  const prefix = `${uniqueIdent('nest')}_`;
  prefixes.push(prefix);
  const r = await startApp({ mqUrl: `memory://${name}`, adapters: [memory()], databaseUrl, tablePrefix: prefix });
  apps.push(r);
  return { r, name, tables: tableNames(prefix) };
}

it('POST /orders commits the order row and its outbox row together; the relay publishes it; fulfilment ships once', async () => {
  const { r, name, tables } = await start();
  expect(r.store).toBeInstanceOf(PgOrderStore);
  const order = (await r.post(anOrder('c-1'))).body as Order;
  await waitFor('the order shipped', async () => (await r.store.shipped()).includes(order.orderId), { timeoutMs: 20_000 });
  // The relay marks the row after the broker confirmed, which can be after the consumer shipped.
  const rows = await waitFor('the outbox row marked published', async () => {
    const r2 = await pool.query(`SELECT id, topic, published_at IS NOT NULL AS published FROM ${tables.outbox}`);
    return r2.rows.every((row: { published: boolean }) => row.published) ? r2 : undefined;
  });
  expect(rows.rows).toEqual([{ id: `order-created:${order.orderId}`, topic: 'order.created', published: true }]);
  expect(await r.store.orders()).toEqual([order.orderId]);
  expect(memoryBroker(name).published('order.created').map((e) => e.id)).toEqual([`order-created:${order.orderId}`]);

  // A redelivered copy: the dedup mark in PostgreSQL keeps the shipment to one.
  await r.app.get(Client).publish('order.created', order, { id: `order-created:${order.orderId}` });
  await waitFor('the copy delivered', () => memoryBroker(name).published('order.created').length === 2, { timeoutMs: 10_000 });
  await new Promise((res) => setTimeout(res, 500));
  expect(r.carrier.bookings.get(order.orderId)).toBe(1);
  const marks = await pool.query(`SELECT state FROM ${tables.processed}`);
  expect(marks.rows).toEqual([{ state: 'done' }]);
});

it('a transaction that fails after writing both rows leaves neither, and nothing is published', async () => {
  const { r, name, tables } = await start();
  const store = r.store as PgOrderStore;
  const order: Order = { ...anOrder('c-2'), orderId: 'o-rolled-back', totalCents: 2_500 };
  await expect(
    store.transaction(async (tx) => {
      await store.insertOrder(tx, order);
      await store.outbox.enqueue(tx, 'order.created', order, { id: `order-created:${order.orderId}` });
      throw new Error('payment declined');
    }),
  ).rejects.toThrow('payment declined');
  expect((await pool.query(`SELECT count(*)::int AS n FROM ${tables.orders}`)).rows[0]).toEqual({ n: 0 });
  expect((await pool.query(`SELECT count(*)::int AS n FROM ${tables.outbox}`)).rows[0]).toEqual({ n: 0 });
  // And one that commits after it goes out: the relay is running, it just had nothing to send.
  const placed = (await r.post(anOrder('c-3'))).body as Order;
  await waitFor('the next order relayed', () => memoryBroker(name).published('order.created').length === 1, { timeoutMs: 20_000 });
  expect(memoryBroker(name).published('order.created').map((e) => e.id)).toEqual([`order-created:${placed.orderId}`]);
});
