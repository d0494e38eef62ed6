import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MqError } from '@mqkit/core/driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManagementApi } from './management.ts';
import { parseConnection } from './options.ts';

// A stand-in for the management plugin: the four routes the operations read, behind basic auth.
const seen: string[] = [];
const routes: Record<string, unknown> = {
  '/api/overview': { rabbitmq_version: '3.10.8' },
  '/api/exchanges/shop': [
    { name: '', type: 'direct' },
    { name: 'amq.topic', type: 'topic' },
    { name: 'orders', type: 'topic' },
    { name: 'orders-dlq', type: 'topic' },
    { name: 'legacy', type: 'fanout' },
  ],
  '/api/exchanges/shop/orders/bindings/source': [
    { destination: 'orders.billing', destination_type: 'queue' },
    { destination: 'orders.billing', destination_type: 'queue' },
    { destination: 'audit', destination_type: 'exchange' },
  ],
  '/api/queues/shop/orders.billing': { name: 'orders.billing', messages_ready: 7, messages_unacknowledged: 3, consumers: 2 },
};
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const path = (req.url ?? '').split('?')[0]!;
  seen.push(path);
  if (req.headers.authorization !== `Basic ${Buffer.from('ops:s3cret').toString('base64')}`) return res.writeHead(401).end();
  const body = routes[path];
  if (body === undefined) return res.writeHead(404).end('{"error":"Object Not Found"}');
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
});
let port = 0;
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const settings = (url: string, options: Record<string, unknown> = {}) => parseConnection(url, options);

describe('ManagementApi', () => {
  it('reads topic exchanges, the queues bound to one, and a queue with ready + unacked, on the URL’s vhost with its credentials', async () => {
    const api = await ManagementApi.open(settings('amqp://ops:s3cret@127.0.0.1:5672/shop', { managementUrl: `http://127.0.0.1:${port}` }));
    expect(api).toBeDefined();
    expect(await api!.topicExchanges()).toEqual(['orders', 'orders-dlq']);
    expect(await api!.queuesBoundTo('orders')).toEqual(['orders.billing']);
    expect(await api!.queue('orders.billing')).toEqual({ name: 'orders.billing', ready: 7, unacked: 3, consumers: 2 });
    const err = await api!.queue('orders.nope').catch((e: unknown) => e);
    expect(MqError.is(err, 'NOT_FOUND')).toBe(true);
  });

  it('credentials in managementUrl win over the AMQP URL’s; wrong ones are AUTH, never echoed', async () => {
    expect(await ManagementApi.open(settings('amqp://guest:guest@127.0.0.1/shop', { managementUrl: `http://ops:s3cret@127.0.0.1:${port}` }))).toBeDefined();
    const err = await ManagementApi.open(settings('amqp://ops:wrong@127.0.0.1/shop', { managementUrl: `http://127.0.0.1:${port}` })).catch((e: unknown) => e);
    expect(MqError.is(err, 'AUTH')).toBe(true);
    expect((err as Error).message).not.toContain('wrong');
  });

  it('an explicit managementUrl that does not answer is CONNECTION; without one, no plugin on port 15672 means none', async () => {
    const err = await ManagementApi.open(settings('amqp://ops:s3cret@127.0.0.1/shop', { managementUrl: 'http://127.0.0.1:1' })).catch((e: unknown) => e);
    expect(MqError.is(err, 'CONNECTION')).toBe(true);
    // 127.0.0.2: loopback, but not where a local broker's plugin listens (127.0.0.1:15672)
    expect(await ManagementApi.open(settings('amqp://ops:s3cret@127.0.0.2/shop'))).toBeUndefined();
    // management=false: none, even where one answers
    expect(await ManagementApi.open(settings(`amqp://ops:s3cret@127.0.0.1/shop?management=false&managementUrl=http://127.0.0.1:${port}`))).toBeUndefined();
  });

  it('the default vhost "/" is sent encoded', async () => {
    const api = await ManagementApi.open(settings('amqp://ops:s3cret@127.0.0.1', { managementUrl: `http://127.0.0.1:${port}` }));
    await api!.topicExchanges().catch(() => {});
    expect(seen.at(-1)).toBe('/api/exchanges/%2F');
  });
});
