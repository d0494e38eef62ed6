import { connect, type Client, type Subscription } from '@mqkit/core';
import type { Adapter } from '@mqkit/core/driver';
import { postgresOutbox, PostgresDedupStore, type PostgresOutbox } from '@mqkit/postgres';
import { startFulfilment } from './fulfilment.ts';
import type { OrderCreated } from './orders.ts';
import { migrate, TABLES } from './schema.ts';

/**
 * The adapter for each URL scheme, loaded only when used: the service runs against whichever
 * broker MQ_URL names, without loading the other brokers' clients.
 */
const ADAPTERS: Readonly<Record<string, () => Promise<Adapter>>> = {
  memory: async () => (await import('@mqkit/testing')).memory(),
  kafka: async () => (await import('@mqkit/kafka')).kafka(),
  amqp: async () => (await import('@mqkit/rabbitmq')).rabbitmq(),
  amqps: async () => (await import('@mqkit/rabbitmq')).rabbitmq(),
  rocketmq: async () => (await import('@mqkit/rocketmq')).rocketmq(),
  sqs: async () => (await import('@mqkit/sqs')).sqs(),
};

/** The adapter serving `url`'s scheme (connect() reports unknown schemes). */
export async function adapterFor(url: string): Promise<Adapter[]> {
  const load = ADAPTERS[/^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase() ?? ''];
  return load ? [await load()] : [];
}

/** Which parts of the service this process runs. */
export interface Roles {
  /** Accept orders (writes orders + outbox rows). */
  api: boolean;
  /** Move outbox rows to the broker (any number of processes may). */
  relay: boolean;
  /** Consume order.created and create shipments. */
  fulfilment: boolean;
}

/** A running order service. */
export interface OrderService {
  readonly client: Client;
  readonly box: PostgresOutbox;
  readonly dedup: PostgresDedupStore;
  stop(): Promise<void>;
}

export interface ServiceConfig {
  mqUrl: string;
  databaseUrl: string;
  roles: Roles;
  /** Broker options (e.g. SQS credentials for an emulator). */
  mqOptions?: Record<string, unknown>;
  onShipped?: (order: OrderCreated) => void;
}

/** Connects, migrates and starts the requested roles. */
export async function startOrderService(config: ServiceConfig): Promise<OrderService> {
  const client = await connect(config.mqUrl, { adapters: await adapterFor(config.mqUrl), ...(config.mqOptions ? { options: config.mqOptions } : {}) });
  const box = postgresOutbox(client, {
    url: config.databaseUrl,
    table: TABLES.outbox,
    dedupTable: TABLES.processed,
    // These adapters send the messages of one batch as concurrent requests: one row per customer
    // per relay round keeps each customer's events in order (see @mqkit/postgres README).
    maxPerKey: ['sqs', 'rocketmq'].includes(client.adapter) ? 1 : 0,
  });
  await migrate(box.pool);
  const dedup = new PostgresDedupStore(box.pool, { dedupTable: TABLES.processed });
  let subscription: Subscription | undefined;
  if (config.roles.fulfilment) subscription = await startFulfilment(client, box.pool, dedup, config.onShipped);
  if (config.roles.relay) box.relay.start();
  return {
    client,
    box,
    dedup,
    stop: async () => {
      await box.relay.stop();
      await subscription?.close();
      await client.close();
      await box.close();
    },
  };
}
