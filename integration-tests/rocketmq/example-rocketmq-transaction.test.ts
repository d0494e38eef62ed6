/**
 * The rocketmq-transaction example (examples/rocketmq-transaction) on the real broker: a recorded
 * payment's message is delivered and a declined one's rolled back; and after a producer dies
 * between its half messages and the decision, the broker's check-back reaches the example's
 * checker in another process, which commits the payment the store has and rolls back the failed one.
 */
import type { Client } from '@mqkit/core';
import type { CheckedMessage, TransactionState } from '@mqkit/rocketmq';
import { afterAll, expect, it } from 'vitest';
import { uniqueGroup, uniqueTopic } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';
import { rocketmqEndpoint, rocketmqUrl } from './mqkit-support.ts';
import { startChild, type Child } from './processes.ts';

// The example is not a dependency of this package: its sources are loaded by URL (typed by hand
// below) so this project's typecheck stays within its own folder.
interface Payment {
  orderId: string;
  amountCents: number;
}
interface PaymentStore {
  record(payment: Payment): Promise<void>;
  outcome(orderId: string): Promise<'committed' | 'failed' | undefined>;
}
const example = (await import(new URL('../../examples/rocketmq-transaction/src/payments.ts', import.meta.url).href)) as {
  memoryPaymentStore(failing?: (p: Payment) => boolean): PaymentStore & { readonly outcomes: Map<string, 'committed' | 'failed'> };
  paymentMessageId(orderId: string): string;
  paymentChecker(store: PaymentStore): (message: CheckedMessage) => Promise<TransactionState>;
  declarePayments(url: string, topic: string, groups?: string[], options?: Record<string, unknown>): Promise<void>;
  connectPayments(url: string, topic: string, store: PaymentStore, options?: Record<string, unknown>): Promise<Client>;
  takePayment(client: Client, topic: string, store: PaymentStore, payment: Payment): Promise<void>;
};

const { namesrv } = rocketmqEndpoint();
// The example's URL form: declaring a TRANSACTION topic needs the name server.
const url = `${rocketmqUrl()}?namesrv=${namesrv ?? ''}`;
const clients: Client[] = [];
const children: Child[] = [];
afterAll(async () => {
  await Promise.allSettled(children.map((c) => c.kill()));
  await Promise.allSettled(clients.map((c) => c.close({ timeoutMs: 0 })));
});

it('a recorded payment is delivered, a declined one rolled back, and the check-back decides after a producer crash', async () => {
  expect(namesrv, 'the example declares its topic through the name server').toBeTruthy();
  const topic = uniqueTopic('example-payments');
  const group = uniqueGroup('example-shipping');
  await example.declarePayments(url, topic, [group]);

  const store = example.memoryPaymentStore((p) => p.amountCents > 100_000);
  const client = await example.connectPayments(url, topic, store, { invisibleDurationMs: 10_000, awaitDurationMs: 2_000 });
  clients.push(client);
  const got: string[] = [];
  await client.subscribe(topic, { group, handler: (d) => void got.push(d.id) });

  await example.takePayment(client, topic, store, { orderId: 'o-ok', amountCents: 2_500 });
  await expect(example.takePayment(client, topic, store, { orderId: 'o-declined', amountCents: 250_000 })).rejects.toThrow('declined');

  // Another producer dies after its half messages: one payment its local transaction recorded,
  // one it recorded as failed. Only this process's checker can decide them.
  store.outcomes.set('o-crash-committed', 'committed');
  store.outcomes.set('o-crash-failed', 'failed');
  const crashIds = ['o-crash-committed', 'o-crash-failed'].map((id) => example.paymentMessageId(id));
  const child = startChild('half-then-crash', { url: rocketmqUrl(), options: { namesrv }, topic, ids: crashIds });
  children.push(child);
  for (const id of crashIds) await child.waitFor((e) => e.event === 'half-sent' && e.id === id, 60_000);
  await child.kill();

  await waitFor('the crashed producer’s committed payment, via the check-back', () => got.includes(example.paymentMessageId('o-crash-committed')), { timeoutMs: 90_000 });
  await sleep(8_000); // several check intervals: the failed one must never arrive
  expect([...got].sort()).toEqual([example.paymentMessageId('o-crash-committed'), example.paymentMessageId('o-ok')].sort());
}, 180_000);

it('the checker answers from the store: commit, rollback, or unknown while the store has no outcome', async () => {
  const store = example.memoryPaymentStore();
  store.outcomes.set('o-1', 'committed');
  store.outcomes.set('o-2', 'failed');
  const check = example.paymentChecker(store);
  const message = (id: string) => ({ id, messageId: 'x' }) as unknown as CheckedMessage;
  expect(await check(message(example.paymentMessageId('o-1')))).toBe('commit');
  expect(await check(message(example.paymentMessageId('o-2')))).toBe('rollback');
  expect(await check(message(example.paymentMessageId('o-3')))).toBe('unknown');
  expect(await check(message('someone-else'))).toBe('rollback');
});
