import { describe, expect, it } from 'vitest';
import type { Delivery } from './delivery.ts';
import { MqError } from './errors.ts';
import { idempotent, MemoryDedupStore } from './idempotency.ts';

describe('MemoryDedupStore', () => {
  it('leases, completes, and reports duplicates', async () => {
    let now = 1_000;
    const store = new MemoryDedupStore({ now: () => now });
    expect(await store.begin('g:1', 100)).toBe('acquired');
    expect(await store.begin('g:1', 100)).toBe('busy');
    await store.complete('g:1', 10_000);
    expect(await store.begin('g:1', 100)).toBe('duplicate');
    now += 10_001;
    expect(await store.begin('g:1', 100)).toBe('acquired');
  });

  it('lets a lease lapse when its consumer died, so a redelivery runs again', async () => {
    let now = 0;
    const store = new MemoryDedupStore({ now: () => now });
    expect(await store.begin('g:2', 500)).toBe('acquired');
    now = 499;
    expect(await store.begin('g:2', 500)).toBe('busy');
    now = 501;
    expect(await store.begin('g:2', 500)).toBe('acquired');
  });

  it('release drops a lease but never a done mark', async () => {
    const store = new MemoryDedupStore();
    await store.begin('g:3', 1_000);
    await store.release('g:3');
    expect(await store.begin('g:3', 1_000)).toBe('acquired');
    await store.complete('g:3', 1_000);
    await store.release('g:3');
    expect(await store.begin('g:3', 1_000)).toBe('duplicate');
  });
});

describe('idempotent() middleware', () => {
  function fakeDelivery(id: string, unsupportedDelay = false) {
    const calls: string[] = [];
    const delivery = {
      id,
      group: 'g',
      ack: async () => void calls.push('ack'),
      nack: async (o?: { delayMs?: number }) => {
        if (unsupportedDelay && (o?.delayMs ?? 0) > 0) throw new MqError('UNSUPPORTED', 'no delay');
        calls.push(`nack:${o?.delayMs ?? 0}`);
      },
    } as unknown as Delivery<unknown>;
    return { delivery, calls };
  }

  it('runs the handler once, then acks duplicates without running it', async () => {
    const store = new MemoryDedupStore();
    const mw = idempotent(store);
    let runs = 0;
    const first = fakeDelivery('m1');
    await mw(first.delivery, async () => void (runs += 1));
    const dup = fakeDelivery('m1');
    await mw(dup.delivery, async () => void (runs += 1));
    expect(runs).toBe(1);
    expect(dup.calls).toEqual(['ack']);
  });

  it('hands a message back while another consumer holds its lease', async () => {
    const store = new MemoryDedupStore();
    await store.begin('g:m2', 60_000);
    const busy = fakeDelivery('m2');
    await idempotent(store, { busyRetryDelayMs: 250 })(busy.delivery, async () => {});
    expect(busy.calls).toEqual(['nack:250']);
    const noDelay = fakeDelivery('m2', true);
    await idempotent(store)(noDelay.delivery, async () => {});
    expect(noDelay.calls).toEqual(['nack:0']);
  });

  it('releases the lease when the handler throws, so the retry runs', async () => {
    const store = new MemoryDedupStore();
    const mw = idempotent(store);
    await expect(mw(fakeDelivery('m3').delivery, async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    let ran = false;
    await mw(fakeDelivery('m3').delivery, async () => void (ran = true));
    expect(ran).toBe(true);
  });
});
