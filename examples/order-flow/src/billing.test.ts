import { connect } from '@mqkit/core';
import { memory, memoryBroker } from '@mqkit/testing';
import { eventually, uniqueName } from '@mqkit/testing/conformance';
import { expect, it } from 'vitest';
import { PaymentGateway, startBilling } from './billing.ts';
import { ORDERS_DLQ } from './orders.ts';
import { placeOrder } from './producer.ts';

it('charges each order once, retries a transient failure, dead-letters a bad order', async () => {
  const name = uniqueName('order-flow');
  const client = await connect(`memory://${name}`, { adapters: [memory()] });
  const gateway = new PaymentGateway();
  const dead: string[] = [];
  await startBilling(client, gateway, { charged: () => {}, failed: () => {}, deadLettered: (id) => dead.push(id) });
  await placeOrder(client, { orderId: 'A-1001', customerId: 'c-1', amountCents: 100 });
  await placeOrder(client, { orderId: 'A-1002', customerId: 'c-2', amountCents: 200 });
  await placeOrder(client, { orderId: 'A-1003', customerId: 'c-1', amountCents: 0 });
  await placeOrder(client, { orderId: 'A-1001', customerId: 'c-1', amountCents: 100 });
  await eventually('two charges and a dead letter', 10_000, () => gateway.charges.size === 2 && dead.length === 1);
  await client.close();
  expect(Object.fromEntries(gateway.charges)).toEqual({ 'A-1001': 1, 'A-1002': 1 });
  expect(dead).toEqual(['A-1003']);
  expect(memoryBroker(name).published(ORDERS_DLQ)).toHaveLength(1);
});
