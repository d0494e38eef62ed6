/**
 * The NestJS example (examples/nestjs-app) on a real RabbitMQ: POST /orders → outbox → relay →
 * RabbitMQ → the @Subscribe consumer (idempotent, retried through the broker's delay queues),
 * the terminus health check asking the broker, and app.close() draining a running handler so
 * that its message is acked, not redelivered to the next instance.
 */
import { Client } from '@mqkit/core';
import { rabbitmq } from '@mqkit/rabbitmq';
import { afterAll, expect, it } from 'vitest';
import { anOrder, startApp, type RunningApp } from '../../examples/nestjs-app/src/app.test-util.ts';
import type { Order } from '../../examples/nestjs-app/src/orders.ts';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueName } from '../src/names.ts';
import { waitFor } from '../src/wait.ts';
import { deleteTopicResources } from './cleanup.ts';

const { url } = requireBroker('rabbitmq');
const topics: string[] = [];
const apps: RunningApp[] = [];

afterAll(async () => {
  await Promise.all(apps.map((a) => a.app.close().catch(() => {})));
  await deleteTopicResources(url, topics);
});

function names() {
  const orderCreated = uniqueName('nest-orders');
  topics.push(orderCreated);
  return { orderCreated, fulfilment: uniqueName('nest-fulfilment') };
}

async function start(n: ReturnType<typeof names>): Promise<RunningApp> {
  const r = await startApp({ mqUrl: url, adapters: [rabbitmq()], names: n });
  apps.push(r);
  return r;
}

it('an order placed over HTTP is relayed to RabbitMQ and shipped once, after the carrier failed twice', async () => {
  const n = names();
  const { app, post, store, carrier, health } = await start(n);
  carrier.failNext = 2;
  const res = await post(anOrder('c-1'));
  expect(res.status).toBe(201);
  const order = res.body as Order;
  await waitFor('the order shipped', async () => (await store.shipped()).includes(order.orderId), { timeoutMs: 30_000 });
  expect(carrier.failNext).toBe(0);
  expect(carrier.calls).toBe(3);

  // A copy of the message (what a relay that crashed before marking its row sends again).
  await app.get(Client).publish(n.orderCreated, order, { id: `order-created:${order.orderId}` });
  await new Promise((r) => setTimeout(r, 1_500));
  expect(carrier.calls).toBe(3);
  expect(carrier.bookings.get(order.orderId)).toBe(1);
  expect(await store.shipped()).toEqual([order.orderId]);

  const up = await health();
  expect(up.status).toBe(200);
  expect(up.body).toMatchObject({ info: { broker: { status: 'up', adapter: 'rabbitmq', topic: n.orderCreated } } });
});

it('app.close() waits for the running handler; its message is acked, not redelivered to the next instance', async () => {
  const n = names();
  const first = await start(n);
  let release!: () => void;
  first.carrier.hold = new Promise<void>((r) => (release = r));
  const order = (await first.post(anOrder('c-2'))).body as Order;
  await waitFor('the handler running', () => first.carrier.calls === 1, { timeoutMs: 30_000 });
  const closing = first.app.close();
  await new Promise((r) => setTimeout(r, 300));
  release();
  await closing;
  expect(await first.store.shipped()).toEqual([order.orderId]);

  const second = await start(n);
  await new Promise((r) => setTimeout(r, 2_000));
  expect(second.carrier.calls).toBe(0);
});
