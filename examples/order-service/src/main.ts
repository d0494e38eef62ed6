/**
 * The order service: `MQ_URL=kafka://127.0.0.1:9092?createTopics=true DATABASE_URL=postgres://… pnpm start`.
 * ROLES (default `api,relay,fulfilment`) picks what this process runs; PORT (default 3000) the
 * HTTP port of the API. With DEMO_ORDERS=n it places n orders itself, waits until all are shipped
 * and exits (what the README's quick start runs).
 */
import { createServer } from 'node:http';
import { redactUrl } from '@mqkit/core';
import { createOrder } from './order-api.ts';
import { parseNewOrder } from './orders.ts';
import { startOrderService, type Roles } from './service.ts';

const mqUrl = process.env.MQ_URL ?? 'memory://';
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/mqkit';
const roleList = (process.env.ROLES ?? 'api,relay,fulfilment').split(',').map((r) => r.trim());
const roles: Roles = { api: roleList.includes('api'), relay: roleList.includes('relay'), fulfilment: roleList.includes('fulfilment') };
const demo = Number(process.env.DEMO_ORDERS ?? 0);
const mqOptions = process.env.MQ_OPTIONS ? (JSON.parse(process.env.MQ_OPTIONS) as Record<string, unknown>) : undefined;

const shipped = new Set<string>();
const service = await startOrderService({
  mqUrl,
  databaseUrl,
  roles,
  ...(mqOptions ? { mqOptions } : {}),
  onShipped: (o) => {
    shipped.add(o.orderId);
    console.log(`shipped ${o.orderId} for ${o.customerId} (${o.items.length} line(s))`);
  },
});
console.log(`order service on ${redactUrl(mqUrl)} (${service.client.adapter}), db ${redactUrl(databaseUrl)}, roles ${roleList.join(',')}`);

if (demo > 0) {
  const ids: string[] = [];
  for (let i = 0; i < demo; i += 1) {
    const order = await createOrder(service.box.pool, service.box.outbox, {
      customerId: `customer-${i % 3}`,
      items: [{ sku: 'book', quantity: 1 + (i % 2), priceCents: 1_250 }],
    });
    ids.push(order.orderId);
    console.log(`created ${order.orderId} (${order.totalCents} cents)`);
  }
  if (roles.fulfilment) {
    const deadline = Date.now() + 60_000;
    while (!ids.every((id) => shipped.has(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    console.log(ids.every((id) => shipped.has(id)) ? `all ${demo} orders shipped` : 'timed out waiting for shipments');
  }
  console.log('outbox', await service.box.store.metrics());
  await service.stop();
} else if (roles.api) {
  const port = Number(process.env.PORT ?? 3000);
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/orders') {
      res.writeHead(404).end();
      return;
    }
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      void (async () => {
        try {
          const order = await createOrder(service.box.pool, service.box.outbox, parseNewOrder(JSON.parse(body)));
          res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify(order));
        } catch (err) {
          res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (err as Error).message }));
        }
      })();
    });
  });
  server.listen(port, () => console.log(`POST http://127.0.0.1:${port}/orders`));
  const shutdown = (): void => {
    server.close();
    void service.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
} else {
  const shutdown = (): void => void service.stop().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
