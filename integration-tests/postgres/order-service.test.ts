/**
 * The order-service example (examples/order-service) on the real PostgreSQL with memory://: an
 * order and its order.created message commit together, a failed order leaves neither, and the
 * fulfilment consumer ships each order exactly once even when the message arrives twice.
 */
import type { Client, Outbox } from '@mqkit/core';
import type { PostgresOutbox, SqlExecutor } from '@mqkit/postgres';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueName } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';

// The example is not a dependency of this package: load its sources by URL (typed by hand below)
// so this project's typecheck stays within its own folder.
const load = (file: string): Promise<Record<string, unknown>> =>
  import(new URL(`../../examples/order-service/src/${file}`, import.meta.url).href) as Promise<Record<string, unknown>>;

interface OrderCreated {
  orderId: string;
  customerId: string;
  totalCents: number;
}
interface OrderService {
  client: Client;
  box: PostgresOutbox;
  stop(): Promise<void>;
}
type CreateOrder = (pool: pg.Pool, outbox: Outbox<SqlExecutor>, order: { customerId: string; items: Array<{ sku: string; quantity: number; priceCents: number }> }) => Promise<OrderCreated>;

const { createOrder } = (await load('order-api.ts')) as { createOrder: CreateOrder };
const { ORDER_CREATED } = (await load('orders.ts')) as { ORDER_CREATED: string };
const { TABLES } = (await load('schema.ts')) as { TABLES: { shipments: string } };
const { startOrderService } = (await load('service.ts')) as {
  startOrderService(config: { mqUrl: string; databaseUrl: string; roles: Record<'api' | 'relay' | 'fulfilment', boolean>; onShipped?: (o: OrderCreated) => void }): Promise<OrderService>;
};

const { url } = requireBroker('postgres');
let service: OrderService;
const shipped: string[] = [];

beforeAll(async () => {
  service = await startOrderService({
    mqUrl: `memory://${uniqueName('orders')}`,
    databaseUrl: url,
    roles: { api: true, relay: true, fulfilment: true },
    onShipped: (o) => shipped.push(o.orderId),
  });
});

afterAll(async () => {
  await service?.stop();
});

it('creates the order and its message in one transaction and ships it once, duplicates included', async () => {
  const customerId = uniqueName('customer');
  const order = await createOrder(service.box.pool, service.box.outbox, { customerId, items: [{ sku: 'pen', quantity: 3, priceCents: 150 }] });
  expect(order.totalCents).toBe(450);
  await waitFor('the shipment', () => shipped.includes(order.orderId), { timeoutMs: 10_000 });
  // The same event again (as a relay crash between publish and mark would cause): absorbed.
  await service.client.publish(ORDER_CREATED, order, { id: `${order.orderId}:created`, key: customerId });
  await sleep(500);
  const check = new pg.Client({ connectionString: url });
  await check.connect();
  const { rows } = await check.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${TABLES.shipments} WHERE order_id = $1`, [order.orderId]);
  await check.end();
  expect(rows[0]!.n).toBe(1);
  expect(shipped.filter((id) => id === order.orderId)).toHaveLength(1);
});

it('an order whose insert fails leaves no message behind', async () => {
  const before = (await service.box.store.metrics()).pending + (await service.box.store.metrics()).retained;
  await expect(
    createOrder(service.box.pool, service.box.outbox, { customerId: 'x'.repeat(10), items: [{ sku: 'big', quantity: 1, priceCents: 2 ** 31 }] }),
  ).rejects.toThrow(/out of range/);
  const m = await service.box.store.metrics();
  expect(m.pending + m.retained).toBe(before);
});
