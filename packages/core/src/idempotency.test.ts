import { describe, expect, it } from 'vitest';
import { MemoryDedupStore } from './idempotency.ts';

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
