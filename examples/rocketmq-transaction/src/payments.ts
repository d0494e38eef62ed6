/**
 * A RocketMQ transactional message with check-back. Taking a payment writes the local payment
 * record (the "local transaction") and publishes `payment-taken`. The message goes out as a half
 * message that consumers cannot see. mqkit commits it when the local work succeeds and rolls it
 * back when the work throws. If the producer dies before deciding, the broker asks back: any process
 * that declared the topic in `transactionTopics` answers from the local state through
 * `transactionChecker`. So the message is delivered exactly when the payment was recorded.
 */
import { connect, type Client } from '@mqkit/core';
import { rocketmq, type CheckedMessage, type TransactionState } from '@mqkit/rocketmq';

export interface Payment {
  orderId: string;
  amountCents: number;
}

/**
 * Where the local transaction lives; in a real service this is your database. The check-back
 * needs three answers: committed, failed, and not known yet (still running, or never started
 * here). Not known yet must not be answered with rollback.
 */
export interface PaymentStore {
  /** The local transaction: records the payment, or throws. */
  record(payment: Payment): Promise<void>;
  /** `committed`, `failed`, or `undefined` when this store has no outcome (yet). */
  outcome(orderId: string): Promise<'committed' | 'failed' | undefined>;
}

/** A {@link PaymentStore} in memory (for the demo and tests; use a database table in production). */
export function memoryPaymentStore(failing: (payment: Payment) => boolean = () => false): PaymentStore & { readonly outcomes: Map<string, 'committed' | 'failed'> } {
  const outcomes = new Map<string, 'committed' | 'failed'>();
  return {
    outcomes,
    async record(payment) {
      if (failing(payment)) {
        outcomes.set(payment.orderId, 'failed');
        throw new Error(`payment for ${payment.orderId} declined`);
      }
      outcomes.set(payment.orderId, 'committed');
    },
    async outcome(orderId) {
      return outcomes.get(orderId);
    },
  };
}

/** The message id carries the order id, so the check-back can look the payment up. */
export const paymentMessageId = (orderId: string): string => `payment-${orderId}`;
const orderIdOf = (messageId: string): string | undefined => (messageId.startsWith('payment-') ? messageId.slice('payment-'.length) : undefined);

/**
 * The check-back: the broker calls it for a half message left undecided, e.g. because its
 * producer crashed. `unknown` makes the broker ask again later; after `transactionCheckMax` checks
 * (15 by default) it rolls the message back.
 */
export function paymentChecker(store: PaymentStore): (message: CheckedMessage) => Promise<TransactionState> {
  return async (message) => {
    const orderId = orderIdOf(message.id);
    if (orderId === undefined) return 'rollback'; // not ours: a payment message always has this id
    const outcome = await store.outcome(orderId);
    return outcome === 'committed' ? 'commit' : outcome === 'failed' ? 'rollback' : 'unknown';
  };
}

/**
 * Declares `topic` as a TRANSACTION topic (a RocketMQ topic has one type) with its consumer groups
 * and dead-letter topic. Declaring needs the name server: `rocketmq://proxy:8081?namesrv=host:9876`.
 * A deploy step would do this once; the example does it at start.
 */
export async function declarePayments(url: string, topic: string, groups: string[] = [], options: Record<string, unknown> = {}): Promise<void> {
  const client = await connect(url, { adapters: [rocketmq()], options });
  try {
    await client.declare({ topic, transactional: true, groups, deadLetter: true });
  } finally {
    await client.close();
  }
}

/**
 * Connects by URL with the checker installed. Listing the topic in `transactionTopics` makes this
 * process one the broker asks back, from the moment it connects; the topic must exist by then
 * ({@link declarePayments}).
 */
export function connectPayments(url: string, topic: string, store: PaymentStore, options: Record<string, unknown> = {}): Promise<Client> {
  return connect(url, {
    adapters: [rocketmq()],
    options: { ...options, transactionTopics: [topic], transactionChecker: paymentChecker(store) },
  });
}

/**
 * Takes a payment: the half message first, then the local transaction. The message commits when
 * `store.record` resolves and rolls back when it throws (the error is rethrown).
 */
export async function takePayment(client: Client, topic: string, store: PaymentStore, payment: Payment): Promise<void> {
  await client.transaction(async (tx) => {
    await tx.publish(topic, payment, { id: paymentMessageId(payment.orderId), key: payment.orderId });
    await store.record(payment);
  });
}
