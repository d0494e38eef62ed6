/**
 * @mqkit/redis against the real Redis: lease / done / release semantics with real expiry, lease
 * tokens, and idempotent consume through core's middleware on the in-memory broker.
 */
import { connect, idempotent } from '@mqkit/core';
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

describe('RedisDedupStore', () => {
  it('acquired → busy while leased → duplicate once done, with the TTL set', async () => {
    const store = new RedisDedupStore(redis, { prefix });
    const other = new RedisDedupStore(redis, { prefix });
    expect(await store.begin('g:1', 10_000)).toBe('acquired');
    expect(await other.begin('g:1', 10_000)).toBe('busy');
    expect(await store.inspect('g:1')).toMatchObject({ state: 'processing' });
    await store.complete('g:1', 60_000);
    expect(await other.begin('g:1', 10_000)).toBe('duplicate');
    const seen = await store.inspect('g:1');
    expect(seen.state).toBe('done');
    expect(seen.ttlMs).toBeGreaterThan(50_000);
    expect(seen.ttlMs).toBeLessThanOrEqual(60_000);
  });

  it('a lease of a dead consumer expires, and the late release of the old holder does not drop the new lease', async () => {
    const dead = new RedisDedupStore(redis, { prefix });
    const alive = new RedisDedupStore(redis, { prefix });
    expect(await dead.begin('g:2', 150)).toBe('acquired');
    expect(await alive.begin('g:2', 10_000)).toBe('busy');
    await sleep(250);
    expect(await alive.begin('g:2', 10_000)).toBe('acquired');
    await dead.release('g:2');
    expect(await alive.inspect('g:2')).toMatchObject({ state: 'processing' });
    await alive.release('g:2');
    expect(await alive.inspect('g:2')).toMatchObject({ state: 'none' });
    expect(await dead.begin('g:2', 10_000)).toBe('acquired');
  });

  it('done marks expire after their TTL', async () => {
    const store = new RedisDedupStore(redis, { prefix });
    expect(await store.begin('g:3', 1_000)).toBe('acquired');
    await store.complete('g:3', 150);
    expect(await store.begin('g:3', 1_000)).toBe('duplicate');
    await sleep(250);
    expect(await store.begin('g:3', 1_000)).toBe('acquired');
  });

  it('reloads its scripts after SCRIPT FLUSH', async () => {
    const store = new RedisDedupStore(redis, { prefix });
    await redis.script('FLUSH');
    expect(await store.begin('g:4', 1_000)).toBe('acquired');
  });

  it('redisDedupStore(url) reads the prefix from the URL and fails with CONNECTION (password redacted) when Redis is unreachable', async () => {
    const owned = redisDedupStore(`${url}?prefix=${encodeURIComponent(prefix)}url:`);
    expect(await owned.begin('k', 1_000)).toBe('acquired');
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
});
