/**
 * Shared by the outbox-kysely and outbox-drizzle example suites: both examples expose the same
 * `startApp` / `placeOrder` shape, so one scenario checks both on the real PostgreSQL (memory://
 * as the broker): a placed order's message is published once, after the commit; an order whose
 * items fail a constraint after the message was enqueued leaves neither the order nor the message.
 */
import type { Client, Outbox } from '@mqkit/core';
import type { PostgresOutbox, SqlExecutor } from '@mqkit/postgres';
import { memoryBroker } from '@mqkit/testing';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueName } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';

interface OrderCreated {
  orderId: string;
  customerId: string;
  totalCents: number;
}
interface App {
  client: Client;
  db: unknown;
  box: PostgresOutbox;
  stop(): Promise<void>;
}
type NewOrder = { id: string; customerId: string; items: Array<{ sku: string; quantity: number; priceCents: number }> };

/** Registers the scenario for `examples/<example>` whose tables are prefixed `tablePrefix`. */
export function outboxExampleSuite(example: 'outbox-kysely' | 'outbox-drizzle', tablePrefix: string): void {
  // The example is not a dependency of this package: its sources are loaded by URL (typed by
  // hand above) so this project's typecheck stays within its own folder.
  const load = (file: string): Promise<Record<string, unknown>> =>
    import(new URL(`../../examples/${example}/src/${file}`, import.meta.url).href) as Promise<Record<string, unknown>>;
  const { url } = requireBroker('postgres');
  const broker = uniqueName(example);
  let app: App;
  let placeOrder: (db: unknown, outbox: Outbox<SqlExecutor>, order: NewOrder) => Promise<OrderCreated>;
  let topic: string;
  const received: string[] = [];
  const check = new pg.Client({ connectionString: url });

  beforeAll(async () => {
    const { startApp } = (await load('app.ts')) as { startApp(c: { mqUrl: string; databaseUrl: string }): Promise<App> };
    ({ placeOrder, ORDER_CREATED: topic } = (await load('orders.ts')) as { placeOrder: typeof placeOrder; ORDER_CREATED: string });
    app = await startApp({ mqUrl: `memory://${broker}`, databaseUrl: url });
    await app.client.subscribe<OrderCreated>(topic, { group: 'emails', handler: (d) => void received.push(d.payload.orderId) });
    await check.connect();
  });
  afterAll(async () => {
    await app?.stop();
    await check.end();
  });

  it(`${example}: the order, its items and its message commit together; the message is published once`, async () => {
    const id = uniqueName('order');
    const event = await placeOrder(app.db, app.box.outbox, { id, customerId: 'c-1', items: [{ sku: 'pen', quantity: 3, priceCents: 150 }, { sku: 'ink', quantity: 1, priceCents: 400 }] });
    expect(event).toEqual({ orderId: id, customerId: 'c-1', totalCents: 850 });
    await waitFor('the order-created message', () => received.includes(id), { timeoutMs: 10_000 });
    await sleep(300);
    expect(received.filter((r) => r === id)).toHaveLength(1);
    expect(memoryBroker(broker).published(topic).filter((e) => e.id === `order-created:${id}`)).toHaveLength(1);
    const items = await check.query(`SELECT sku FROM ${tablePrefix}_order_items WHERE order_id = $1 ORDER BY sku`, [id]);
    expect(items.rows.map((r: { sku: string }) => r.sku)).toEqual(['ink', 'pen']);
  });

  it(`${example}: an item failing its constraint after the message was enqueued rolls back the order and the message`, async () => {
    const id = uniqueName('order');
    await expect(placeOrder(app.db, app.box.outbox, { id, customerId: 'c-2', items: [{ sku: 'pen', quantity: 0, priceCents: 150 }] })).rejects.toThrow();
    const good = uniqueName('order');
    await placeOrder(app.db, app.box.outbox, { id: good, customerId: 'c-2', items: [{ sku: 'pen', quantity: 1, priceCents: 150 }] });
    await waitFor('the later order', () => received.includes(good), { timeoutMs: 10_000 });
    await sleep(300);
    expect(received).not.toContain(id);
    expect(memoryBroker(broker).published(topic).map((e) => e.id)).not.toContain(`order-created:${id}`);
    const orders = await check.query(`SELECT id FROM ${tablePrefix}_orders WHERE id = $1`, [id]);
    expect(orders.rowCount).toBe(0);
    const outbox = await check.query(`SELECT id FROM ${tablePrefix}_outbox WHERE id = $1`, [`order-created:${id}`]);
    expect(outbox.rowCount).toBe(0);
  });
}
