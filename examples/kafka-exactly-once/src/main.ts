/**
 * `MQ_URL=kafka://127.0.0.1:9092 pnpm start`: publishes a few orders, runs the invoicer (one
 * failing commit included, to show the abort), reads the invoices back and checks each once.
 */
import { redactUrl } from '@mqkit/core';
import { connectInvoicer, startInvoicer, type Invoice, type Order } from './invoicer.ts';

const url = process.env.MQ_URL ?? 'kafka://127.0.0.1:9092';
const suffix = Date.now().toString(36);
const topics = { orders: `orders-${suffix}`, invoices: `invoices-${suffix}` };
const count = Number(process.env.ORDERS ?? 10);

const client = await connectInvoicer(url, topics, 'invoicer');
console.log(`invoicer on ${redactUrl(url)}: ${topics.orders} -> ${topics.invoices}`);

const invoices = new Map<string, number>();
await client.subscribe<Invoice>(topics.invoices, { group: 'ledger', handler: (d) => void invoices.set(d.id, (invoices.get(d.id) ?? 0) + 1) });
let failedOnce = false;
await startInvoicer(client, {
  ...topics,
  group: 'invoicer',
  // The first attempt of order 3 fails after its invoice was staged: the transaction aborts.
  beforeCommit: (d) => {
    if (d.payload.orderId === 'o-3' && !failedOnce) {
      failedOnce = true;
      throw new Error('simulated failure before commit');
    }
  },
});
for (let n = 1; n <= count; n += 1) {
  const order: Order = { orderId: `o-${n}`, customerId: `c-${n % 3}`, netCents: 1_000 * n };
  await client.publish(topics.orders, order, { id: order.orderId, key: order.customerId });
}
const deadline = Date.now() + 60_000;
while (invoices.size < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
await new Promise((r) => setTimeout(r, 1_000));
const twice = [...invoices].filter(([, n]) => n > 1).map(([id]) => id);
console.log(`${invoices.size}/${count} invoices, ${twice.length ? `seen twice: ${twice.join(', ')}` : 'each exactly once'} (one commit aborted: ${failedOnce})`);
await client.close();
process.exitCode = invoices.size === count && twice.length === 0 ? 0 : 1;
