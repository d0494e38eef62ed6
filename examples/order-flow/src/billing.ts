import { idempotent, MemoryDedupStore, type Client, type DedupStore, type Subscription } from '@mqkit/core';
import { ORDERS_DLQ, ORDERS_TOPIC, type OrderCreated } from './orders.ts';

/** What the billing service reports, so the demo (or a test) can follow along. */
export interface BillingEvents {
  charged(order: OrderCreated, attempt: number): void;
  failed(order: OrderCreated, attempt: number, error: Error): void;
  deadLettered(orderId: string, reason: string, error: string | undefined): void;
}

/** A payment gateway that is flaky once for order "A-1002". */
export class PaymentGateway {
  readonly charges = new Map<string, number>();
  #flaked = false;

  async charge(order: OrderCreated): Promise<void> {
    if (order.amountCents <= 0) throw new Error(`invalid amount ${order.amountCents}`);
    if (order.orderId === 'A-1002' && !this.#flaked) {
      this.#flaked = true;
      throw new Error('payment gateway timeout');
    }
    this.charges.set(order.orderId, (this.charges.get(order.orderId) ?? 0) + 1);
  }
}

/**
 * The billing service: charges each order once. A throwing charge is retried with backoff, a
 * hopeless one is dead-lettered after 3 attempts, and redeliveries/duplicates are absorbed by the
 * dedup store.
 */
export async function startBilling(
  client: Client,
  gateway: PaymentGateway,
  events: BillingEvents,
  store: DedupStore = new MemoryDedupStore(),
): Promise<Subscription[]> {
  const billing = await client.subscribe<OrderCreated>(ORDERS_TOPIC, {
    group: 'billing',
    concurrency: 4,
    retry: { maxAttempts: 3, initialDelayMs: 200, maxDelayMs: 1_000 },
    middleware: [idempotent(store)],
    handler: async (msg) => {
      try {
        await gateway.charge(msg.payload);
      } catch (err) {
        events.failed(msg.payload, msg.attempt, err as Error);
        throw err;
      }
      events.charged(msg.payload, msg.attempt);
    },
  });
  const watcher = await client.subscribe<OrderCreated>(ORDERS_DLQ, {
    group: 'ops-alerts',
    handler: (msg) => {
      events.deadLettered(msg.payload.orderId, msg.headers['x-mqkit-dead-letter-reason'] ?? '?', msg.headers['x-mqkit-error']);
    },
  });
  return [billing, watcher];
}
