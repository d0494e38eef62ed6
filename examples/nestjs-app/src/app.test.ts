import { Client } from '@mqkit/core';
import { memory, memoryBroker } from '@mqkit/testing';
import { eventually, uniqueName } from '@mqkit/testing/conformance';
import { afterEach, expect, it } from 'vitest';
import { anOrder, startApp, type RunningApp } from './app.test-util.ts';
import type { Order } from './orders.ts';

const running: RunningApp[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.app.close().catch(() => {})));
});

async function start(name: string): Promise<RunningApp> {
  const r = await startApp({ mqUrl: `memory://${name}`, adapters: [memory()] });
  running.push(r);
  return r;
}

it('POST /orders stores the order, the outbox relays order.created, fulfilment ships it once', async () => {
  const name = uniqueName('nest-app');
  const { post, store, carrier } = await start(name);
  const res = await post(anOrder());
  expect(res.status).toBe(201);
  const order = res.body as Order;
  expect(order.totalCents).toBe(2_500);
  await eventually('the order shipped', 10_000, async () => (await store.shipped()).includes(order.orderId));
  expect(await store.orders()).toEqual([order.orderId]);
  expect(memoryBroker(name).published('order.created').map((e) => e.id)).toEqual([`order-created:${order.orderId}`]);
  expect(carrier.bookings.get(order.orderId)).toBe(1);
});

it('a carrier failure is retried; a redelivered copy is not shipped twice (idempotent)', async () => {
  const name = uniqueName('nest-app');
  const { app, post, store, carrier } = await start(name);
  carrier.failNext = 2;
  const order = (await post(anOrder('c-2'))).body as Order;
  await eventually('shipped after two failures', 10_000, async () => (await store.shipped()).includes(order.orderId));
  expect(carrier.failNext).toBe(0);
  // The broker (or a relay that crashed before marking the row) sends the same message again.
  await app.get(Client).publish('order.created', order, { id: `order-created:${order.orderId}` });
  await eventually('the copy delivered', 10_000, () => memoryBroker(name).published('order.created').length === 2);
  await new Promise((r) => setTimeout(r, 200));
  expect(carrier.bookings.get(order.orderId)).toBe(1);
  expect(await store.shipped()).toEqual([order.orderId]);
});

it('a bad order is 400 and writes nothing; GET /health is up, and down once the client is closed', async () => {
  const name = uniqueName('nest-app');
  const { app, post, health, store } = await start(name);
  const bad = await post({ customerId: 'c-3', items: [] });
  expect(bad.status).toBe(400);
  expect(await store.orders()).toEqual([]);
  expect(memoryBroker(name).published('order.created')).toEqual([]);
  const up = await health();
  expect(up.status).toBe(200);
  expect(up.body).toMatchObject({ status: 'ok', info: { broker: { status: 'up', adapter: 'memory', topic: 'order.created' } } });
  await app.get(Client).close();
  const down = await health();
  expect(down.status).toBe(503);
  expect(down.body).toMatchObject({ status: 'error', error: { broker: { status: 'down' } } });
});

it('app.close() drains: an order placed just before shutdown is shipped before close resolves', async () => {
  const name = uniqueName('nest-app');
  const r = await start(name);
  running.splice(running.indexOf(r), 1);
  const order = (await r.post(anOrder('c-4'))).body as Order;
  await eventually('relayed', 10_000, () => memoryBroker(name).published('order.created').length === 1);
  await r.app.close();
  expect(await r.store.shipped()).toEqual([order.orderId]);
  await expect(r.app.get(Client).publish('x', 1)).rejects.toThrow(/closed/);
});
