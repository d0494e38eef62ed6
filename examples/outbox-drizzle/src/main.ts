/**
 * `MQ_URL=kafka://127.0.0.1:9092 DATABASE_URL=postgres://postgres@127.0.0.1:5432/mqkit pnpm start`
 * (MQ_URL defaults to memory://): places two orders and one that fails, prints what was
 * published, exits.
 */
import { redactUrl } from '@mqkit/core';
import { startApp } from './app.ts';
import { ORDER_CREATED, placeOrder, type OrderCreated } from './orders.ts';

const mqUrl = process.env.MQ_URL ?? 'memory://';
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/mqkit';
const run = Date.now().toString(36);

const app = await startApp({ mqUrl, databaseUrl });
console.log(`outbox-drizzle on ${redactUrl(mqUrl)}, db ${redactUrl(databaseUrl)}`);
const received: string[] = [];
await app.client.subscribe<OrderCreated>(ORDER_CREATED, { group: 'emails', handler: (d) => void received.push(d.payload.orderId) });

const placed: string[] = [];
for (const [n, quantity] of [[1, 2], [2, 0], [3, 1]] as const) {
  const id = `${run}-${n}`;
  try {
    const event = await placeOrder(app.db, app.box.outbox, { id, customerId: `c-${n}`, items: [{ sku: 'book', quantity, priceCents: 1_250 }] });
    placed.push(id);
    console.log(`placed ${id}: ${event.totalCents} cents`);
  } catch (err) {
    console.log(`order ${id} rolled back with its message: ${(err as Error).message}`);
  }
}
const deadline = Date.now() + 30_000;
while (!placed.every((id) => received.includes(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
await new Promise((r) => setTimeout(r, 500));
const mine = received.filter((id) => id.startsWith(run)).sort();
console.log(`received order-created for ${mine.join(', ')}`);
await app.stop();
process.exitCode = mine.join() === placed.sort().join() ? 0 : 1;
