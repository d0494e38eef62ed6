/**
 * Raw ioredis against the real Redis: SET NX PX (the dedup/lease primitive) and key expiry.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueName } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';

const { url } = requireBroker('redis');
let a: Redis;
let b: Redis;
const keys: string[] = [];
const key = (p: string) => {
  const k = uniqueName(`mqkit-test-${p}`);
  keys.push(k);
  return k;
};

beforeAll(async () => {
  a = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  b = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await Promise.all([a.connect(), b.connect()]);
});

afterAll(async () => {
  if (keys.length) await a?.del(...keys).catch(() => {});
  a?.disconnect();
  b?.disconnect();
});

describe('ioredis raw client', () => {
  it('SET NX PX: only the first of two clients wins, the loser sees the winner value', async () => {
    const k = key('nx');
    const [ra, rb] = await Promise.all([a.set(k, 'client-a', 'PX', 5_000, 'NX'), b.set(k, 'client-b', 'PX', 5_000, 'NX')]);
    expect([ra, rb].filter((r) => r === 'OK')).toHaveLength(1);
    expect([ra, rb].filter((r) => r === null)).toHaveLength(1);
    const winner = ra === 'OK' ? 'client-a' : 'client-b';
    expect(await b.get(k)).toBe(winner);
    const pttl = await a.pttl(k);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(5_000);
  });

  it('PX expiry: the key vanishes after its TTL and can then be claimed again', async () => {
    const k = key('px');
    expect(await a.set(k, 'first', 'PX', 400, 'NX')).toBe('OK');
    expect(await b.set(k, 'second', 'PX', 400, 'NX')).toBeNull();
    await sleep(100);
    expect(await b.get(k)).toBe('first');
    await waitFor('key expiry', async () => (await b.exists(k)) === 0, { timeoutMs: 3_000, intervalMs: 50 });
    expect(await a.pttl(k)).toBe(-2); // -2: no such key
    expect(await b.set(k, 'second', 'PX', 400, 'NX')).toBe('OK');
    expect(await a.get(k)).toBe('second');
  });

  it('a key without TTL has PTTL -1; PEXPIRE then expires it', async () => {
    const k = key('persist');
    await a.set(k, 'v');
    expect(await a.pttl(k)).toBe(-1);
    expect(await a.pexpire(k, 200)).toBe(1);
    await waitFor('PEXPIRE expiry', async () => (await b.get(k)) === null, { timeoutMs: 3_000, intervalMs: 50 });
  });
});
