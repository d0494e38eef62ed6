/** Shared set-up of the @mqkit/redis-streams suites: clients on the real Redis, key clean-up. */
import { connect, type Client, type ConnectOptions } from '@mqkit/core';
import { redisStreams } from '@mqkit/redis-streams';
import { Redis } from 'ioredis';
import { requireBroker } from '../src/endpoints.ts';

/** Short leases and blocks, so that a dead consumer's entries come back and close returns quickly. */
export const TEST_OPTIONS = { leaseMs: 3_000, blockMs: 500 } as const;

export function redisUrl(): string {
  return requireBroker('redis').url;
}

export function connectStreams(options: ConnectOptions = {}): Promise<Client> {
  return connect(redisUrl(), { ...options, adapters: [redisStreams()], options: { ...TEST_OPTIONS, ...options.options } });
}

/** Deletes the streams of the given topics, their dead-letter streams and mqkit's keys beside them. */
export async function deleteTopics(topics: readonly string[]): Promise<void> {
  if (topics.length === 0) return;
  const redis = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
  try {
    for (const topic of topics) {
      const keys = [topic, `${topic}-dlq`, `${topic}-dlq-dlq`];
      for (const t of [topic, `${topic}-dlq`]) keys.push(...(await redis.keys(`mqkit:*:${t}*`)));
      await redis.del(...keys);
    }
  } finally {
    redis.disconnect();
  }
}
