import { memory } from '@mqkit/testing';
import { uniqueName } from '@mqkit/testing/conformance';
import { describe, expect, it } from 'vitest';
import { connect } from './connect.ts';
import type { Adapter, Driver, DriverReceiver } from './driver/driver.ts';
import { MqError } from './errors.ts';
import { verdict } from './health.ts';
import { OutboxRelay, type OutboxStore } from './outbox.ts';

async function until(what: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!what()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The memory adapter with some driver calls replaced (switchable while running). */
function faulty(faults: { send?: () => MqError | undefined; receive?: () => MqError | undefined }): Adapter {
  const base = memory();
  const bound = <T extends object>(target: T, overrides: Record<string | symbol, unknown>): T =>
    new Proxy(target, {
      get(t, property) {
        if (property in overrides) return overrides[property];
        const v: unknown = Reflect.get(t, property, t);
        return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(t) : v;
      },
    });
  return {
    ...base,
    async create(url, options, ctx) {
      const driver = await base.create(url, options, ctx);
      const send: Driver['send'] = (envelopes) => {
        const error = faults.send?.();
        return error ? Promise.resolve(envelopes.map(() => ({ ok: false as const, error }))) : driver.send(envelopes);
      };
      const receiver = async (spec: Parameters<Driver['receiver']>[0]): Promise<DriverReceiver> => {
        const r = await driver.receiver(spec);
        const receive: DriverReceiver['receive'] = (max, signal) => {
          const error = faults.receive?.();
          return error ? Promise.reject(error) : r.receive(max, signal);
        };
        return bound(r, { receive });
      };
      return bound(driver, { send, receiver });
    },
  };
}

const url = (): string => `memory://${uniqueName('health')}`;

describe('client.health()', () => {
  it('a fresh client with a running subscription is ready and live', async () => {
    const mq = await connect(url(), { adapters: [memory()] });
    await mq.subscribe('t', { group: 'g', handler: () => {} });
    const h = mq.health();
    expect(h).toMatchObject({ status: 'ok', ready: true, live: true, adapter: 'memory', closed: false, publisher: { state: 'ok', pending: 0 } });
    expect(h.subscriptions).toEqual([{ topic: 't', group: 'g', state: 'running', inFlight: 0, failingSince: undefined, lastReceiveError: undefined, lastSettleError: undefined }]);
    expect(h.outboxRelays).toEqual([]);
    await mq.close();
  });

  it('a backpressured subscription is paused and still ready', async () => {
    const mq = await connect(url(), { adapters: [memory()] });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await mq.subscribe('t', { group: 'g', concurrency: 1, prefetch: 0, handler: () => gate });
    await mq.publish('t', 1);
    await mq.publish('t', 2);
    await until(() => mq.health().subscriptions[0]!.state === 'paused');
    expect(mq.health()).toMatchObject({ ready: true, subscriptions: [{ state: 'paused', inFlight: 1 }] });
    release();
    await until(() => mq.health().subscriptions[0]!.state === 'running');
    await mq.close();
  });

  it('failing receive calls: not ready at once, not live after maxFailingMs, ready again once receive works', async () => {
    let down = true;
    const mq = await connect(url(), { adapters: [faulty({ receive: () => (down ? new MqError('CONNECTION', 'broker unreachable') : undefined) })] });
    await mq.subscribe('t', { group: 'g', handler: () => {} });
    await until(() => mq.health().subscriptions[0]!.state === 'failing');
    const h = mq.health();
    expect(h).toMatchObject({ status: 'degraded', ready: false, live: true });
    expect(h.subscriptions[0]!.lastReceiveError).toMatchObject({ code: 'CONNECTION', message: 'broker unreachable' });
    expect(Date.parse(h.subscriptions[0]!.failingSince!)).toBeLessThanOrEqual(Date.now());
    await new Promise((r) => setTimeout(r, 30));
    expect(mq.health({ maxFailingMs: 10 })).toMatchObject({ status: 'down', live: false, ready: false });
    down = false;
    // A receive call returns when it has messages (a long poll): one makes it succeed.
    await mq.publish('t', 1);
    await until(() => mq.health().ready, 10_000);
    expect(mq.health().subscriptions[0]).toMatchObject({ state: 'running', failingSince: undefined, lastReceiveError: { code: 'CONNECTION' } });
    await mq.close();
  });

  it('a failing publisher: not ready, with its last error; a confirmed publish makes it ok again', async () => {
    let down = true;
    const mq = await connect(url(), { adapters: [faulty({ send: () => (down ? new MqError('CONNECTION', 'connection lost', { retryable: false }) : undefined) })] });
    await expect(mq.publish('t', 1)).rejects.toMatchObject({ code: 'CONNECTION' });
    expect(mq.health()).toMatchObject({ ready: false, publisher: { state: 'failing', lastError: { code: 'CONNECTION' } } });
    down = false;
    await mq.publish('t', 2);
    expect(mq.health()).toMatchObject({ ready: true, publisher: { state: 'ok', lastError: { code: 'CONNECTION' } } });
    await mq.close();
  });

  it('a message-level failure (too large, unroutable) is reported but does not make the publisher failing', async () => {
    const mq = await connect(url(), { adapters: [faulty({ send: () => new MqError('UNROUTABLE', 'no route') })] });
    await expect(mq.publish('t', 1)).rejects.toMatchObject({ code: 'UNROUTABLE' });
    expect(mq.health()).toMatchObject({ ready: true, publisher: { state: 'ok', lastError: { code: 'UNROUTABLE' } } });
    await mq.close();
  });

  it('a closed client is not live; subscriptions report closed', async () => {
    const mq = await connect(url(), { adapters: [memory()] });
    const sub = await mq.subscribe('t', { group: 'g', handler: () => {} });
    await sub.close();
    expect(mq.health().subscriptions).toEqual([]);
    await mq.close();
    expect(mq.health()).toMatchObject({ status: 'down', live: false, ready: false, closed: true });
  });

  it('a running outbox relay is reported, failing while its rounds fail', async () => {
    const mq = await connect(url(), { adapters: [memory()] });
    let broken = true;
    const store: OutboxStore<unknown> = {
      enqueue: async () => {},
      claim: async () => {
        if (broken) throw new MqError('CONNECTION', 'database down');
        return [];
      },
      markPublished: async () => 0,
      markFailed: async () => 0,
      markDead: async () => 0,
      listDead: async () => [],
      replayDead: async () => 0,
      discardDead: async () => 0,
    };
    const relay = new OutboxRelay(store, mq, { pollIntervalMs: 10, backoff: { initialDelayMs: 5, maxDelayMs: 5 } });
    expect(mq.health().outboxRelays).toEqual([]);
    relay.start();
    await until(() => mq.health().outboxRelays[0]?.state === 'failing');
    expect(mq.health()).toMatchObject({ ready: false, outboxRelays: [{ state: 'failing', lastError: { code: 'CONNECTION', message: 'database down' } }] });
    broken = false;
    await until(() => mq.health().outboxRelays[0]?.state === 'running');
    expect(mq.health().ready).toBe(true);
    expect(mq.health().outboxRelays[0]!.lastRoundAt).toBeDefined();
    await relay.stop();
    expect(mq.health().outboxRelays).toEqual([]);
    await mq.close();
  });

  it('rejects unknown options with CONFIG', async () => {
    const mq = await connect(url(), { adapters: [memory()] });
    expect(() => mq.health({ maxFailingMs: -1 })).toThrow(expect.objectContaining({ code: 'CONFIG' }) as Error);
    expect(() => mq.health({ maxFailing: 1 } as never)).toThrow(expect.objectContaining({ code: 'CONFIG' }) as Error);
    await mq.close();
  });
});

describe('verdict', () => {
  it('ok, degraded, down', () => {
    expect(verdict(false, [undefined], 100, 1_000)).toEqual({ status: 'ok', ready: true, live: true });
    expect(verdict(false, [950], 100, 1_000)).toEqual({ status: 'degraded', ready: false, live: true });
    expect(verdict(false, [850], 100, 1_000)).toEqual({ status: 'down', ready: false, live: false });
    expect(verdict(true, [], 100, 1_000)).toEqual({ status: 'down', ready: false, live: false });
  });
});
