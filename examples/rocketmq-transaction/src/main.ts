/**
 * `MQ_URL='rocketmq://127.0.0.1:8081?namesrv=127.0.0.1:9876' pnpm start`: takes three payments, one
 * of which is declined, and shows that the consumer gets exactly the two recorded ones.
 */
import { redactUrl } from '@mqkit/core';
import { connectPayments, declarePayments, memoryPaymentStore, takePayment, type Payment } from './payments.ts';

const url = process.env.MQ_URL ?? 'rocketmq://127.0.0.1:8081?namesrv=127.0.0.1:9876';
const topic = process.env.TOPIC ?? `payments-${Date.now().toString(36)}`;
const store = memoryPaymentStore((p) => p.amountCents > 100_000); // the bank declines big ones

await declarePayments(url, topic, ['shipping']);
const client = await connectPayments(url, topic, store);
console.log(`payments on ${redactUrl(url)}, TRANSACTION topic ${topic}`);
const received: string[] = [];
await client.subscribe<Payment>(topic, { group: 'shipping', handler: (d) => void received.push(d.payload.orderId) });

for (const payment of [
  { orderId: 'o-1', amountCents: 2_500 },
  { orderId: 'o-2', amountCents: 250_000 },
  { orderId: 'o-3', amountCents: 900 },
]) {
  try {
    await takePayment(client, topic, store, payment);
    console.log(`${payment.orderId}: recorded, message committed`);
  } catch (err) {
    console.log(`${payment.orderId}: ${(err as Error).message}, message rolled back`);
  }
}
const deadline = Date.now() + 30_000;
while (received.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
await new Promise((r) => setTimeout(r, 3_000)); // a rolled-back message must not show up
console.log(`shipping received ${received.sort().join(', ')}`);
await client.close();
process.exitCode = received.join() === 'o-1,o-3' ? 0 : 1;
