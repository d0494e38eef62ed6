import { Client, MqError, type Delivery } from '@mqkit/core';
import type { Adapter, Driver } from '@mqkit/core/driver';
import { memory } from '@mqkit/testing';
import { uniqueName } from '@mqkit/testing/conformance';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { afterEach, expect, it } from 'vitest';
import { MqkitModule, Subscribe } from './index.ts';
import { MqkitHealthIndicator } from './terminus.ts';

const apps: INestApplicationContext[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close().catch(() => {})));
});

/** The memory adapter whose sends fail with CONNECTION while `failing.on`. */
function flakySends(failing: { on: boolean }): Adapter {
  const base = memory();
  return {
    ...base,
    async create(url, options, ctx) {
      const driver = await base.create(url, options, ctx);
      const send: Driver['send'] = (envelopes) =>
        failing.on ? Promise.resolve(envelopes.map(() => ({ ok: false as const, error: new MqError('CONNECTION', 'broker unreachable', { retryable: true }) }))) : driver.send(envelopes);
      return new Proxy(driver, {
        get: (t, p): unknown => {
          if (p === 'send') return send;
          const v: unknown = Reflect.get(t, p, t);
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
        },
      });
    },
  };
}

@Injectable()
class Consumer {
  @Subscribe('orders', { group: 'billing' })
  async handle(_delivery: Delivery): Promise<void> {}
}

async function start(adapter: Adapter = memory()) {
  @Module({
    imports: [MqkitModule.forRoot({ url: `memory://${uniqueName('nest-health')}`, adapters: [adapter], publish: { timeoutMs: 300 } }), TerminusModule],
    providers: [MqkitHealthIndicator, Consumer],
  })
  class AppModule {}
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
  apps.push(app);
  const health = app.get(HealthCheckService);
  const mq = app.get(MqkitHealthIndicator);
  const check = (options?: Parameters<MqkitHealthIndicator['check']>[1]) =>
    health.check([() => mq.check('broker', options)]).then(
      (r) => r as unknown as Record<string, unknown>,
      (err: { response?: Record<string, unknown> }) => err.response ?? { thrown: err },
    );
  return { app, check, indicator: mq };
}

it('up from client.health(); with a topic, a broker round trip (down with NOT_FOUND for a missing topic)', async () => {
  const { check } = await start();
  expect(await check()).toMatchObject({ status: 'ok', info: { broker: { status: 'up', adapter: 'memory', ready: true, live: true } } });
  expect(await check({ topic: 'orders' })).toMatchObject({ status: 'ok', info: { broker: { status: 'up', topic: 'orders' } } });
  const missing = await check({ topic: 'no-such-topic' });
  expect(missing).toMatchObject({ status: 'error', error: { broker: { status: 'down', topic: 'no-such-topic' } } });
  expect(JSON.stringify(missing)).toContain('NOT_FOUND');
});

it('a failing publisher: readiness down naming it, liveness degraded, then down past maxFailingMs', async () => {
  const failing = { on: false };
  const { app, check } = await start(flakySends(failing));
  failing.on = true;
  await expect(app.get(Client).publish('orders', {})).rejects.toThrow();
  const ready = await check();
  expect(ready).toMatchObject({ status: 'error', error: { broker: { status: 'down', ready: false, live: true } } });
  expect(JSON.stringify(ready)).toMatch(/publisher: (CONNECTION|TIMEOUT)/);
  expect(await check({ probe: 'liveness' })).toMatchObject({ info: { broker: { status: 'degraded', live: true } } });
  await new Promise((r) => setTimeout(r, 20));
  expect(await check({ probe: 'liveness', maxFailingMs: 1 })).toMatchObject({ status: 'error', error: { broker: { status: 'down', live: false } } });
  failing.on = false;
  await app.get(Client).publish('orders', {});
  expect(await check()).toMatchObject({ status: 'ok' });
});

it('down once the client is closed; bad options are CONFIG', async () => {
  const { app, check, indicator } = await start();
  await expect(indicator.check('broker', { probe: 'startup' as never })).rejects.toSatisfy((err) => MqError.is(err, 'CONFIG'));
  await expect(indicator.check('broker', { timeoutMs: 0 })).rejects.toSatisfy((err) => MqError.is(err, 'CONFIG'));
  await app.get(Client).close();
  const down = await check();
  expect(down).toMatchObject({ status: 'error', error: { broker: { status: 'down', failing: ['client closed'] } } });
});
