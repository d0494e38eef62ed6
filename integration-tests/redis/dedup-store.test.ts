/**
 * @mqkit/redis against the real Redis: lease / done / release semantics with real expiry, lease
 * tokens, and idempotent consume through core's middleware on the in-memory broker.
 */
import { connect, idempotent, type BeginResult, type Delivery } from '@mqkit/core';
import { RedisDedupStore, redisDedupStore } from '@mqkit/redis';
import { memory } from '@mqkit/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueName } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';

const { url } = requireBroker('redis');
let redis: Redis;
const prefix = `${uniqueName('dedup')}:`;

beforeAll(() => {
  redis = new Redis(url);
});

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

/** The token of an acquired lease (fails the test when the key was not acquired). */
function tokenOf(result: BeginResult): string {
  expect(result.state).toBe('acquired');
  return (result as { token: string }).token;
}

describe('RedisDedupStore', () => {
  it('acquired → busy while leased → duplicate once done, with the TTL set', async () => {
    const store = new RedisDedupStore(redis, { prefix });
    const other = new RedisDedupStore(redis, { prefix });
    const token = tokenOf(await store.begin('g:1', 10_000));
    expect(await other.begin('g:1', 10_000)).toEqual({ state: 'busy' });
    expect(await store.inspect('g:1')).toMatchObject({ state: 'processing' });
    expect(await store.complete('g:1', token, 60_000)).toBe(true);
    expect(await other.begin('g:1', 10_000)).toEqual({ state: 'duplicate' });
    const seen = await store.inspect('g:1');
    expect(seen.state).toBe('done');
    expect(seen.ttlMs).toBeGreaterThan(50_000);
    expect(seen.ttlMs).toBeLessThanOrEqual(60_000);
  });

  it('a lease of a dead consumer expires, and the late release of the old holder does not drop the new lease', async () => {
    const dead = new RedisDedupStore(redis, { prefix });
    const alive = new RedisDedupStore(redis, { prefix });
    const stale = tokenOf(await dead.begin('g:2', 150));
    expect((await alive.begin('g:2', 10_000)).state).toBe('busy');
    await sleep(250);
    const fresh = tokenOf(await alive.begin('g:2', 10_000));
    expect(await dead.release('g:2', stale)).toBe(false);
    expect(await alive.inspect('g:2')).toMatchObject({ state: 'processing' });
    expect(await alive.release('g:2', fresh)).toBe(true);
    expect(await alive.inspect('g:2')).toMatchObject({ state: 'none' });
    expect((await dead.begin('g:2', 10_000)).state).toBe('acquired');
  });

  it('fences renew and complete by the token: a stale holder neither extends nor overwrites the new holder', async () => {
    const store = new RedisDedupStore(redis, { prefix });
    const stale = tokenOf(await store.begin('g:5', 150));
    await sleep(250);
    expect(await store.renew('g:5', stale, 10_000)).toBe(false); // lapsed: not renewed
    const fresh = tokenOf(await store.begin('g:5', 400));
    expect(await store.renew('g:5', stale, 10_000)).toBe(false);
    expect(await store.complete('g:5', stale, 60_000)).toBe(false);
    expect(await store.inspect('g:5')).toMatchObject({ state: 'processing' });
    expect(await store.renew('g:5', fresh, 10_000)).toBe(true);
    expect((await store.inspect('g:5')).ttlMs).toBeGreaterThan(5_000);
    expect(await store.complete('g:5', fresh, 60_000)).toBe(true);
    expect(await store.release('g:5', fresh)).toBe(false); // a done mark is not a lease
    expect((await store.begin('g:5', 1_000)).state).toBe('duplicate');
  });

  it('complete by a holder whose lease lapsed untaken writes the done mark', async () => {
    const store = new RedisDedupStore(redis, { prefix });
    const token = tokenOf(await store.begin('g:6', 100));
    await sleep(200);
    expect(await store.complete('g:6', token, 60_000)).toBe(true);
    expect((await store.begin('g:6', 1_000)).state).toBe('duplicate');
  });

  it('done marks expire after their TTL', async () => {
    const store = new RedisDedupStore(redis, { prefix });
    const token = tokenOf(await store.begin('g:3', 1_000));
    await store.complete('g:3', token, 150);
    expect((await store.begin('g:3', 1_000)).state).toBe('duplicate');
    await sleep(250);
    expect((await store.begin('g:3', 1_000)).state).toBe('acquired');
  });

  it('reloads its scripts after SCRIPT FLUSH', async () => {
    const store = new RedisDedupStore(redis, { prefix });
    await redis.script('FLUSH');
    const token = tokenOf(await store.begin('g:4', 1_000));
    await redis.script('FLUSH');
    expect(await store.renew('g:4', token, 1_000)).toBe(true);
    await redis.script('FLUSH');
    expect(await store.complete('g:4', token, 1_000)).toBe(true);
  });

  it('redisDedupStore(url) reads the prefix from the URL and fails with CONNECTION (password redacted) when Redis is unreachable', async () => {
    const owned = redisDedupStore(`${url}?prefix=${encodeURIComponent(prefix)}url:`);
    expect((await owned.begin('k', 1_000)).state).toBe('acquired');
    expect(await redis.exists(`${prefix}url:k`)).toBe(1);
    await owned.close();
    const down = redisDedupStore('redis://:s3cret@127.0.0.1:1/0');
    const err = await down.begin('k', 1_000).catch((e: unknown) => e);
    await down.close();
    expect(err).toMatchObject({ name: 'MqError', code: 'CONNECTION', retryable: true });
    expect(String((err as Error).message)).not.toContain('s3cret');
  });

  it('with idempotent(store), redelivered copies of a message run the handler once per group', async () => {
    const store = new RedisDedupStore(redis, { prefix });
    const mq = await connect(`memory://${uniqueName('redisdedup')}`, { adapters: [memory()] });
    const topic = uniqueName('t');
    const effects: string[] = [];
    const sub = await mq.subscribe<{ n: number }>(topic, {
      group: 'g',
      middleware: [idempotent(store)],
      handler: async (m) => {
        effects.push(`${m.id}:${m.payload.n}`);
      },
    });
    const id = uniqueName('msg');
    for (let i = 0; i < 3; i += 1) await mq.publish(topic, { n: 1 }, { id });
    await mq.publish(topic, { n: 2 });
    await waitFor('both messages', () => effects.length === 2 || undefined, { timeoutMs: 5_000 });
    await sleep(200);
    expect(effects).toHaveLength(2);
    await sub.close();
    await mq.close();
  });
  it('with idempotent(store), a handler that nacks on its first delivery runs the effect on the redelivery, exactly once', async () => {
    const store = new RedisDedupStore(redis, { prefix });
    const mq = await connect(`memory://${uniqueName('redisnack')}`, { adapters: [memory()] });
    const topic = uniqueName('t');
    const effects: string[] = [];
    const sub = await mq.subscribe<{ n: number }>(topic, {
      group: 'g',
      middleware: [idempotent(store, { busyRetryDelayMs: 20 })],
      handler: async (m) => {
        if (m.attempt === 1) return m.nack(); // not ready yet
        effects.push(m.id);
      },
    });
    const id = uniqueName('msg');
    await mq.publish(topic, { n: 1 }, { id });
    await waitFor('the effect on a redelivery', () => effects.length === 1 || undefined, { timeoutMs: 5_000 });
    await mq.publish(topic, { n: 1 }, { id }); // a later copy is a duplicate
    await sleep(300);
    expect(effects).toEqual([id]);
    expect(await store.inspect(`g:${id}`)).toMatchObject({ state: 'done' });
    await sub.close();
    await mq.close();
  });

  it('with idempotent(store), a handler slower than leaseMs keeps its lease: a concurrent redelivery sees busy', async () => {
    const store = new RedisDedupStore(redis, { prefix });
    const mw = idempotent(store, { leaseMs: 300 });
    const key = uniqueName('slow');
    const delivery = (id: string) => {
      const calls: string[] = [];
      return {
        calls,
        d: {
          id,
          group: 'g',
          settlement: undefined,
          ack: async () => void calls.push('ack'),
          nack: async (o?: { delayMs?: number }) => void calls.push(`nack:${o?.delayMs ?? 0}`),
        } as unknown as Delivery<unknown>,
      };
    };
    let finish!: () => void;
    let runs = 0;
    const slow = mw(delivery(key).d, () => new Promise<void>((r) => { runs += 1; finish = r; }));
    await sleep(1_000); // more than three leases
    expect((await store.begin(`g:${key}`, 300)).state).toBe('busy');
    const concurrent = delivery(key);
    await mw(concurrent.d, async () => void (runs += 1));
    expect(concurrent.calls).toEqual(['nack:1000']);
    finish();
    await slow;
    expect(runs).toBe(1);
    expect(await store.inspect(`g:${key}`)).toMatchObject({ state: 'done' });
  });
});
