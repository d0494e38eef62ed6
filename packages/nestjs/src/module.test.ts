import { Client, idempotent, MemoryDedupStore, MqError, type Delivery, type DedupStore } from '@mqkit/core';
import { memory, memoryBroker } from '@mqkit/testing';
import { eventually, uniqueName } from '@mqkit/testing/conformance';
import { Controller, Inject, Injectable, Module, Scope, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { afterEach, expect, it } from 'vitest';
import { InjectMqkit, MqkitLifecycle, MqkitModule, Subscribe } from './index.ts';

// Tests run under esbuild, which emits no decorator metadata: every injection names its token,
// as the package itself does.

const apps: INestApplicationContext[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close().catch(() => {})));
});

async function start(module: unknown): Promise<INestApplicationContext> {
  const app = await NestFactory.createApplicationContext(module as never, { logger: false, abortOnError: false });
  apps.push(app);
  return app;
}

@Injectable()
class Billing {
  readonly seen: string[] = [];
  readonly client: Client;
  constructor(@InjectMqkit() client: Client) {
    this.client = client;
  }

  @Subscribe('orders', { group: 'billing' })
  async bill(delivery: Delivery<{ id: string }>): Promise<void> {
    // `this` is the provider instance Nest created.
    this.seen.push(delivery.payload.id);
  }
}

it('forRoot connects, injects the client, and starts @Subscribe methods bound to their instance', async () => {
  const name = uniqueName('nest');
  @Module({ imports: [MqkitModule.forRoot({ url: `memory://${name}`, adapters: [memory()] })], providers: [Billing] })
  class AppModule {}
  const app = await start(AppModule);
  const billing = app.get(Billing);
  expect(billing.client).toBeInstanceOf(Client);
  expect(app.get(Client)).toBe(billing.client);
  expect(app.get(MqkitLifecycle).subscriptions.map((s) => [s.topic, s.group])).toEqual([['orders', 'billing']]);
  await billing.client.publish('orders', { id: 'o-1' });
  await eventually('the order billed', 5_000, () => billing.seen.length === 1);
  expect(billing.seen).toEqual(['o-1']);
});

it('a throwing handler is retried, then dead-lettered; several @Subscribe on one method', async () => {
  const name = uniqueName('nest');
  @Injectable()
  class Flaky {
    readonly attempts = new Map<string, number>();
    @Subscribe('payments', { group: 'a', retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 } })
    @Subscribe('refunds', { group: 'b', retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 5 } })
    async handle(delivery: Delivery<{ ok: boolean }>): Promise<void> {
      const key = `${delivery.topic}:${delivery.id}`;
      this.attempts.set(key, (this.attempts.get(key) ?? 0) + 1);
      if (!delivery.payload.ok) throw new Error('declined');
    }
  }
  @Module({ imports: [MqkitModule.forRoot({ url: `memory://${name}`, adapters: [memory()] })], providers: [Flaky] })
  class AppModule {}
  const app = await start(AppModule);
  const mq = app.get(Client);
  await mq.publish('payments', { ok: false }, { id: 'p-1' });
  await mq.publish('refunds', { ok: false }, { id: 'r-1' });
  await mq.publish('refunds', { ok: true }, { id: 'r-2' });
  const broker = memoryBroker(name);
  await eventually('both dead-lettered', 5_000, () => broker.published('payments-dlq').length === 1 && broker.published('refunds-dlq').length === 1);
  const flaky = app.get(Flaky);
  expect(Object.fromEntries(flaky.attempts)).toEqual({ 'payments:p-1': 3, 'refunds:r-1': 2, 'refunds:r-2': 1 });
});

it('options as a function of the instance: middleware from injection (idempotent consume)', async () => {
  const name = uniqueName('nest');
  const DEDUP = Symbol('dedup');
  @Injectable()
  class Shipping {
    readonly dedup: DedupStore;
    readonly shipped: string[] = [];
    constructor(@Inject(DEDUP) dedup: DedupStore) {
      this.dedup = dedup;
    }
    @Subscribe('orders', (self: Shipping) => ({ group: 'shipping', middleware: [idempotent(self.dedup)] }))
    async ship(delivery: Delivery<{ id: string }>): Promise<void> {
      this.shipped.push(delivery.payload.id);
    }
  }
  @Module({
    imports: [MqkitModule.forRoot({ url: `memory://${name}`, adapters: [memory()] })],
    providers: [Shipping, { provide: DEDUP, useValue: new MemoryDedupStore() }],
  })
  class AppModule {}
  const app = await start(AppModule);
  const mq = app.get(Client);
  await mq.publish('orders', { id: 'o-1' }, { id: 'm-1' });
  await mq.publish('orders', { id: 'o-1' }, { id: 'm-1' }); // a redelivered copy
  await mq.publish('orders', { id: 'o-2' }, { id: 'm-2' });
  await eventually('two orders shipped', 5_000, () => app.get(Shipping).shipped.length >= 2);
  await new Promise((r) => setTimeout(r, 100));
  expect(app.get(Shipping).shipped).toEqual(['o-1', 'o-2']);
});

it('forRootAsync takes its options from injected providers; isGlobal makes the client injectable everywhere', async () => {
  const name = uniqueName('nest');
  const CONFIG = Symbol('config');
  @Module({ providers: [{ provide: CONFIG, useValue: { mqUrl: `memory://${name}` } }], exports: [CONFIG] })
  class ConfigModule {}
  @Injectable()
  class Deep {
    readonly client: Client;
    constructor(@Inject(Client) client: Client) {
      this.client = client;
    }
  }
  @Module({ providers: [Deep] }) // does not import MqkitModule
  class FeatureModule {}
  @Module({
    imports: [
      MqkitModule.forRootAsync({
        isGlobal: true,
        imports: [ConfigModule],
        inject: [CONFIG],
        useFactory: async (config: { mqUrl: string }) => ({ url: config.mqUrl, adapters: [memory()] }),
      }),
      FeatureModule,
    ],
  })
  class AppModule {}
  const app = await start(AppModule);
  const client = app.get(Deep).client;
  expect(client.adapter).toBe('memory');
  await client.publish('x', 1);
  expect(memoryBroker(name).published('x')).toHaveLength(1);
});

it('app.close() lets a running handler finish, then closes the subscriptions and the client', async () => {
  const name = uniqueName('nest');
  const events: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  @Injectable()
  class Slow {
    @Subscribe('jobs', { group: 'slow' })
    async run(delivery: Delivery<string>): Promise<void> {
      events.push(`start ${delivery.payload}`);
      await gate;
      events.push(`end ${delivery.payload}`);
    }
  }
  @Module({ imports: [MqkitModule.forRoot({ url: `memory://${name}`, adapters: [memory()], closeTimeoutMs: 5_000 })], providers: [Slow] })
  class AppModule {}
  const app = await start(AppModule);
  const mq = app.get(Client);
  await mq.publish('jobs', 'j-1');
  await eventually('the handler running', 5_000, () => events.length === 1);
  const closing = app.close().then(() => events.push('closed'));
  await new Promise((r) => setTimeout(r, 100));
  expect(events).toEqual(['start j-1']); // close waits for the handler
  release();
  await closing;
  expect(events).toEqual(['start j-1', 'end j-1', 'closed']);
  await expect(mq.publish('jobs', 'j-2')).rejects.toSatisfy((err) => MqError.is(err, 'CLOSED'));
  // The message was acked before the client closed: nothing is left for the group.
  expect(memoryBroker(name).published('jobs')).toHaveLength(1);
});

it('consume: false connects and publishes but starts no subscription', async () => {
  const name = uniqueName('nest');
  @Module({ imports: [MqkitModule.forRoot({ url: `memory://${name}`, adapters: [memory()], consume: false })], providers: [Billing] })
  class AppModule {}
  const app = await start(AppModule);
  expect(app.get(MqkitLifecycle).subscriptions).toEqual([]);
  await app.get(Client).publish('orders', { id: 'o-1' });
  await new Promise((r) => setTimeout(r, 100));
  expect(app.get(Billing).seen).toEqual([]);
});

it('bad options are CONFIG errors naming the field', async () => {
  const config = (fn: () => unknown): void => {
    try {
      fn();
    } catch (err) {
      expect(MqError.is(err, 'CONFIG')).toBe(true);
      expect((err as Error).message).toMatch(/closeTimeoutMs|consum|url/);
      return;
    }
    throw new Error('expected a CONFIG error');
  };
  config(() => MqkitModule.forRoot({ url: 'memory://x', closeTimeoutMs: -1 }));
  config(() => MqkitModule.forRoot({ url: 'memory://x', consumes: false } as never));
  config(() => MqkitModule.forRoot({ url: '' }));
  @Module({ imports: [MqkitModule.forRootAsync({ useFactory: () => ({ url: 'memory://x', consume: 'yes' }) as never })] })
  class AsyncModule {}
  await expect(start(AsyncModule)).rejects.toSatisfy((err) => MqError.is(err, 'CONFIG') && /forRootAsync\.consume/.test((err as Error).message));
  expect(() => Subscribe('', { group: 'g' })).toThrow(MqError);
});

it('a @Subscribe that core refuses fails bootstrap naming the method, and closes the client', async () => {
  const name = uniqueName('nest');
  let client: Client | undefined;
  @Injectable()
  class Broken {
    constructor(@Inject(Client) c: Client) {
      client = c;
    }
    @Subscribe('orders', { group: 'g', concurrency: 0 })
    async handle(): Promise<void> {}
  }
  @Module({ imports: [MqkitModule.forRoot({ url: `memory://${name}`, adapters: [memory()] })], providers: [Broken] })
  class AppModule {}
  await expect(NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false })).rejects.toSatisfy(
    (err) => MqError.is(err, 'CONFIG') && (err as Error).message.includes("@Subscribe('orders') on Broken.handle") && (err as Error).message.includes('concurrency'),
  );
  await expect(client!.publish('orders', {})).rejects.toSatisfy((err) => MqError.is(err, 'CLOSED'));
});

it('a request-scoped provider cannot subscribe: CONFIG naming it', async () => {
  const name = uniqueName('nest');
  @Injectable({ scope: Scope.REQUEST })
  class PerRequest {
    @Subscribe('orders', { group: 'g' })
    async handle(): Promise<void> {}
  }
  @Module({ imports: [MqkitModule.forRoot({ url: `memory://${name}`, adapters: [memory()] })], providers: [PerRequest] })
  class AppModule {}
  await expect(NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false })).rejects.toSatisfy(
    (err) => MqError.is(err, 'CONFIG') && (err as Error).message.includes('PerRequest.handle'),
  );
});

it('controllers are found too; a provider aliased with useExisting subscribes once', async () => {
  const name = uniqueName('nest');
  const seen: string[] = [];
  @Controller()
  class Webhooks {
    @Subscribe('hooks', { group: 'web' })
    async handle(delivery: Delivery<string>): Promise<void> {
      seen.push(delivery.payload);
    }
  }
  @Module({
    imports: [MqkitModule.forRoot({ url: `memory://${name}`, adapters: [memory()] })],
    controllers: [Webhooks],
    providers: [Billing, { provide: 'BILLING_ALIAS', useExisting: Billing }],
  })
  class AppModule {}
  const app = await start(AppModule);
  const topics = app.get(MqkitLifecycle).subscriptions.map((s) => `${s.topic}/${s.group}`);
  expect(topics.sort()).toEqual(['hooks/web', 'orders/billing']);
  await app.get(Client).publish('hooks', 'h-1');
  await eventually('the controller consumed', 5_000, () => seen.length === 1);
});
