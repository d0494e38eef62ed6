/**
 * The driver-level contract checks (`@mqkit/testing/drivertest`) against the real Redis: the
 * receiver alone (round trip, nack, a republished id, receive max and abort, fan-out, lease
 * extension). The full suite through core runs in conformance.test.ts, so it is not repeated here.
 */
import { redisStreams, redisStreamsCapabilities } from '@mqkit/redis-streams';
import { runDriverConformance } from '@mqkit/testing/drivertest';
import { afterAll } from 'vitest';
import { silentLogger } from '@mqkit/core';
import { uniqueName } from '../src/names.ts';
import { deleteTopics, redisUrl, TEST_OPTIONS } from './harness.ts';

const topics: string[] = [];
afterAll(() => deleteTopics(topics));

runDriverConformance(
  {
    name: 'redis-streams (Redis 7)',
    capabilities: redisStreamsCapabilities(TEST_OPTIONS),
    create: () => redisStreams().create(redisUrl(), TEST_OPTIONS, { logger: silentLogger }),
    topic: async () => {
      const topic = uniqueName('drv');
      topics.push(topic);
      return topic;
    },
    timing: { deliveryMs: 10_000, redeliveryMs: 10_000, quietMs: 1_000, testMs: 60_000, delayMs: 1_500 },
  },
  { scenarios: false },
);
