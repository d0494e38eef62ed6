/**
 * The kafka-exactly-once example (examples/kafka-exactly-once) on the real broker: every order
 * gives exactly one visible invoice although some commits abort after the invoice was staged, and
 * the consumed offsets were committed by the transactions (a new member of the group gets nothing).
 */
import type { Client, Delivery, Subscription } from '@mqkit/core';
import { afterAll, expect, it } from 'vitest';
import { uniqueGroup, uniqueTopic } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';
import { connectKafka, kafkaUrl } from './harness.ts';

// The example is not a dependency of this package: its sources are loaded by URL (typed by hand
// below) so this project's typecheck stays within its own folder.
interface Order {
  orderId: string;
  customerId: string;
  netCents: number;
}
interface Invoice {
  invoiceId: string;
  orderId: string;
  netCents: number;
  vatCents: number;
  totalCents: number;
}
const example = (await import(new URL('../../examples/kafka-exactly-once/src/invoicer.ts', import.meta.url).href)) as {
  invoiceFor(order: Order): Invoice;
  connectInvoicer(url: string, topics: { orders: string; invoices: string }, group: string): Promise<Client>;
  startInvoicer(client: Client, options: { orders: string; invoices: string; group: string; beforeCommit?: (d: Delivery<Order>) => void }): Promise<Subscription>;
};

const clients: Client[] = [];
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close({ timeoutMs: 0 })));
});

it('each order gives one visible invoice, aborted commits included, and its offset commits with it', async () => {
  const topics = { orders: uniqueTopic('example-orders'), invoices: uniqueTopic('example-invoices') };
  const group = uniqueGroup('example-invoicer');
  const client = await example.connectInvoicer(kafkaUrl, topics, group);
  clients.push(client);

  const seen = new Map<string, Invoice[]>();
  await client.subscribe<Invoice>(topics.invoices, {
    group: uniqueGroup('example-ledger'),
    handler: (d) => void seen.set(d.id, [...(seen.get(d.id) ?? []), d.payload]),
  });
  // Two orders fail on their first attempt after the invoice and the offset were staged.
  const aborted: string[] = [];
  const invoicer = await example.startInvoicer(client, {
    ...topics,
    group,
    beforeCommit: (d) => {
      if (['o-3', 'o-7'].includes(d.payload.orderId) && d.attempt === 1) {
        aborted.push(d.payload.orderId);
        throw new Error('failure before commit');
      }
    },
  });
  const orders: Order[] = Array.from({ length: 12 }, (_, i) => ({ orderId: `o-${i + 1}`, customerId: `c-${i % 4}`, netCents: 1_000 + i }));
  for (const order of orders) await client.publish(topics.orders, order, { id: order.orderId, key: order.customerId });

  await waitFor('12 invoices', () => seen.size >= 12, { timeoutMs: 60_000 });
  await sleep(2_000); // an aborted invoice, were it visible, would show up as a second copy
  expect(aborted.sort()).toEqual(['o-3', 'o-7']);
  expect([...seen.keys()].sort()).toEqual(orders.map((o) => `inv-${o.orderId}`).sort());
  for (const order of orders) expect(seen.get(`inv-${order.orderId}`)).toEqual([example.invoiceFor(order)]);

  // The transactions committed the group's offsets: a new member of the same group reads nothing.
  await invoicer.close();
  const again: string[] = [];
  const other = await connectKafka();
  clients.push(other);
  await other.subscribe(topics.orders, { group, handler: (d) => void again.push(d.id) });
  await sleep(4_000);
  expect(again).toEqual([]);
}, 150_000);
