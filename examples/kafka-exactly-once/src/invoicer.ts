/**
 * Exactly-once consume-transform-produce on Kafka: read an order from `orders`, write its invoice
 * to `invoices`, and commit the consumed offset **in the same Kafka transaction**. Either the
 * invoice is visible and the order counts as consumed, or neither: a crash or a failure anywhere
 * before the commit aborts both, and the order is read again. Consumers read committed only, so
 * no one sees an aborted invoice; nothing downstream needs a dedup store.
 */
import { connect, type Client, type Delivery, type Subscription } from '@mqkit/core';
import { kafka, type KafkaNative } from '@mqkit/kafka';

export interface Order {
  orderId: string;
  customerId: string;
  netCents: number;
}

export interface Invoice {
  invoiceId: string;
  orderId: string;
  netCents: number;
  vatCents: number;
  totalCents: number;
}

/** The transform: pure, so reprocessing an order after an abort yields the same invoice. */
export function invoiceFor(order: Order, vatRate = 0.2): Invoice {
  const vatCents = Math.round(order.netCents * vatRate);
  return { invoiceId: `inv-${order.orderId}`, orderId: order.orderId, netCents: order.netCents, vatCents, totalCents: order.netCents + vatCents };
}

/** Connects by URL (`kafka://host:9092`) and declares the two topics and the invoicer's group. */
export async function connectInvoicer(url: string, topics: { orders: string; invoices: string }, group: string): Promise<Client> {
  const client = await connect(url, { adapters: [kafka()] });
  try {
    await client.declare({ topic: topics.orders, partitions: 3, groups: [group], deadLetter: true });
    await client.declare({ topic: topics.invoices, partitions: 3 });
  } catch (err) {
    await client.close();
    throw err;
  }
  return client;
}

export interface InvoicerOptions {
  orders: string;
  invoices: string;
  group: string;
  /**
   * Runs inside the transaction after the invoice and the offset are staged, before the commit;
   * throwing aborts both (e.g. a check against another system). Optional.
   */
  beforeCommit?: (delivery: Delivery<Order>) => void | Promise<void>;
}

/**
 * Starts the invoicer. `concurrency: 1` keeps the committed offset exactly at the message being
 * handled; with more, an unfinished earlier message of the partition holds the offset back and a
 * crash could produce an invoice twice (the invoice id is deterministic, so downstream could still
 * dedup it: see the Kafka adapter README).
 */
export function startInvoicer(client: Client, options: InvoicerOptions): Promise<Subscription> {
  const native = client.native as KafkaNative;
  return client.subscribe<Order>(options.orders, {
    group: options.group,
    concurrency: 1,
    retry: { maxAttempts: 5 },
    handler: async (delivery) => {
      const invoice = invoiceFor(delivery.payload);
      const tx = await native.beginTransaction();
      try {
        await tx.send([client.prepare(options.invoices, invoice, { id: invoice.invoiceId, key: delivery.key })]);
        // The group's next offset for this partition, committed by the transaction itself.
        const offsets = native.transactionOffsets(delivery);
        if (offsets) await tx.sendOffsets(offsets.groupId, offsets.offsets);
        await options.beforeCommit?.(delivery);
        await tx.commit();
      } catch (err) {
        await tx.abort().catch(() => {});
        throw err; // mqkit retries the order (then dead-letters it after maxAttempts)
      }
    },
  });
}
