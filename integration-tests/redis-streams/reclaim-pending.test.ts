/**
 * Adversarial: a consumer that crashed with entries pending (read with XREADGROUP, never acked)
 * must not lose them. Another mqkit consumer of the group claims them with XAUTOCLAIM once their
 * lease (idle time) expired, not before, and hands them over with the PEL delivery count as attempt.
 */
import { redisStreams } from '@mqkit/redis-streams';
import { connect, type Client } from '@mqkit/core';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../src/names.ts';
import { waitFor } from '../src/wait.ts';
import { deleteTopics, redisUrl } from './harness.ts';

const topics: string[] = [];
const clients: Client[] = [];
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await deleteTopics(topics);
});

describe('redis-streams: a crashed consumer', () => {
  it("its pending entries are reclaimed after the lease, with attempt 2, and acked", async () => {
    const topic = uniqueName('crash');
    const group = uniqueName('g');
    topics.push(topic);
    const raw = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
    try {
      await raw.xgroup('CREATE', topic, group, '0', 'MKSTREAM');
      const publisher = await connect(redisUrl(), { adapters: [redisStreams()] });
      clients.push(publisher);
      const receipts = await Promise.all([1, 2, 3].map((n) => publisher.publish(topic, { n }, { key: `k${n}` })));
      // The "crashed" consumer reads all three and dies without acking.
      const read = (await raw.xreadgroup('GROUP', group, 'crashed', 'COUNT', 10, 'STREAMS', topic, '>')) as unknown[];
      expect(read).not.toBeNull();
      expect(Number((await raw.xpending(topic, group))[0])).toBe(3);

      const leaseMs = 2_000;
      const consumer = await connect(redisUrl(), { adapters: [redisStreams()], options: { leaseMs, blockMs: 200 } });
      clients.push(consumer);
      const got: Array<{ id: string; attempt: number; at: number }> = [];
      const start = Date.now();
      await consumer.subscribe(topic, { group, handler: (d) => void got.push({ id: d.id, attempt: d.attempt, at: Date.now() - start }) });
      await waitFor('the three reclaimed entries', () => got.length >= 3, { timeoutMs: 15_000, intervalMs: 20 });
      expect(got.map((g) => g.id).sort()).toEqual(receipts.map((r) => r.id).sort());
      expect(got.map((g) => g.attempt)).toEqual([2, 2, 2]);
      // Not before the lease: the crashed consumer read them at least leaseMs - (set-up time) ago.
      expect(Math.min(...got.map((g) => g.at))).toBeGreaterThanOrEqual(leaseMs / 2);
      await waitFor('the entries acked', async () => Number((await raw.xpending(topic, group))[0]) === 0, { timeoutMs: 5_000 });
      const consumers = (await raw.xinfo('CONSUMERS', topic, group)) as unknown[];
      expect(consumers.length).toBeGreaterThanOrEqual(1);
    } finally {
      raw.disconnect();
    }
  }, 30_000);

  it('an entry nacked with a delay longer than the lease is not redelivered early by lease expiry', async () => {
    const topic = uniqueName('park');
    const group = uniqueName('g');
    topics.push(topic);
    const client = await connect(redisUrl(), { adapters: [redisStreams()], options: { leaseMs: 1_000, blockMs: 200 } });
    clients.push(client);
    const seen: Array<{ attempt: number; at: number }> = [];
    const start = Date.now();
    await client.subscribe(topic, {
      group,
      retry: { maxAttempts: 3, initialDelayMs: 3_000, maxDelayMs: 3_000, multiplier: 1, jitter: false },
      handler: (d) => {
        seen.push({ attempt: d.attempt, at: Date.now() - start });
        if (d.attempt === 1) throw new Error('not yet');
      },
    });
    await client.publish(topic, { n: 1 });
    await waitFor('the retry', () => seen.length >= 2, { timeoutMs: 15_000, intervalMs: 20 });
    expect(seen.map((s) => s.attempt)).toEqual([1, 2]);
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(2_900);
  }, 30_000);
});
