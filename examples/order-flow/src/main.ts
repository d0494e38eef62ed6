/**
 * The mqkit demo: an order service publishes orders, a billing service charges them once each,
 * with a transient failure retried, a bad order dead-lettered, and a duplicate absorbed.
 *
 *   pnpm demo                                   # in-memory broker
 *   MQ_URL=amqp://guest:guest@127.0.0.1:5672 pnpm demo
 *   MQ_URL=kafka://127.0.0.1:9092 pnpm demo    # any broker URL of the README's quickstart table
 */
import { connect, redactUrl } from '@mqkit/core';
import { PaymentGateway, startBilling } from './billing.ts';
import type { OrderCreated } from './orders.ts';
import { placeOrder } from './producer.ts';

const url = process.env.MQ_URL ?? 'memory://demo';
const log = (service: string, text: string): void => console.log(`${new Date().toISOString().slice(11, 23)}  ${service.padEnd(8)} ${text}`);

const orders: OrderCreated[] = [
  { orderId: 'A-1001', customerId: 'c-7', amountCents: 1999 },
  { orderId: 'A-1002', customerId: 'c-8', amountCents: 4500 },
  { orderId: 'A-1003', customerId: 'c-7', amountCents: -100 },
];

async function main(): Promise<void> {
  log('demo', `connecting to ${redactUrl(url)}`);
  // The demo declares what it uses on any broker (production: topology 'verify' with provisioned topics).
  const client = await connect(url, { topology: 'create' });
  const gateway = new PaymentGateway();
  let charged = 0;
  let deadLettered = 0;
  await startBilling(client, gateway, {
    charged: (o, attempt) => {
      charged += 1;
      log('billing', `charged ${o.orderId} ${(o.amountCents / 100).toFixed(2)} EUR (attempt ${attempt})`);
    },
    failed: (o, attempt, err) => log('billing', `attempt ${attempt} for ${o.orderId} failed: ${err.message}`),
    deadLettered: (orderId, reason, error) => {
      deadLettered += 1;
      log('ops', `dead letter: ${orderId} (${reason}: ${error ?? 'no error recorded'})`);
    },
  });

  for (const order of orders) log('orders', `published ${order.orderId} as ${await placeOrder(client, order)}`);
  log('orders', `re-published A-1001 (a client retry): same id, so billing must not charge twice`);
  await placeOrder(client, orders[0]!);

  const deadline = Date.now() + Number(process.env.DEMO_TIMEOUT_MS ?? 60_000);
  while ((charged < 2 || deadLettered < 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 500)); // room for a duplicate to show up, if the dedup failed
  await client.close();

  const summary = [...gateway.charges].map(([id, n]) => `${id}×${n}`).join(', ');
  log('demo', `charges: ${summary}; dead letters: ${deadLettered}`);
  const ok = gateway.charges.get('A-1001') === 1 && gateway.charges.get('A-1002') === 1 && !gateway.charges.has('A-1003') && deadLettered === 1;
  log('demo', ok ? 'OK: every order charged once, the bad one dead-lettered' : 'UNEXPECTED OUTCOME');
  process.exitCode = ok ? 0 : 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
