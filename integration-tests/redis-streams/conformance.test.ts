/**
 * The mqkit conformance suite, model-based sweep included, against the real Redis
 * (`endpoints.redis.url`): a topic is a stream, a group a consumer group.
 *
 * Scenarios the adapter cannot run are not registered as skipped tests (the integration runner
 * fails on any skipped test); one test pins the exact set of skipped scenario ids and reasons.
 */
import { runModelConformance, runScenario, scenarios, skipReason, type ConformanceHarness } from '@mqkit/testing/conformance';
import { redisStreamsCapabilities } from '@mqkit/redis-streams';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../src/names.ts';
import { connectStreams, deleteTopics, TEST_OPTIONS } from './harness.ts';

const topics: string[] = [];

const harness: ConformanceHarness = {
  name: 'redis-streams (Redis 7)',
  capabilities: redisStreamsCapabilities(TEST_OPTIONS),
  connect: () => connectStreams(),
  topic: async () => {
    const topic = uniqueName('conf');
    topics.push(topic);
    return topic;
  },
  timing: { deliveryMs: 10_000, redeliveryMs: 10_000, quietMs: 1_000, testMs: 60_000, delayMs: 1_500 },
};

const EXPECTED_SKIPS = {
  'key-ordering': "capabilities.ordering is not 'key'",
  'key-ordering-publish-waves': "capabilities.ordering is not 'key'",
  'key-ordering-with-retry': "capabilities.ordering is not 'key'",
  'transaction-unsupported': 'capabilities.transactions is true (tested by transaction-commit-and-abort)',
};

describe(`mqkit conformance: ${harness.name}`, () => {
  afterAll(() => deleteTopics(topics));

  for (const scenario of scenarios) {
    if (skipReason(scenario, harness) !== undefined) continue;
    it(`[${scenario.id}] ${scenario.title}`, () => runScenario(scenario, harness), 60_000);
  }

  it('skips exactly the scenarios it cannot run, by name', () => {
    const skipped = Object.fromEntries(scenarios.flatMap((s) => (skipReason(s, harness) === undefined ? [] : [[s.id, skipReason(s, harness)]])));
    expect(skipped).toEqual(EXPECTED_SKIPS);
  });
});

runModelConformance(harness, { runs: 6 }); // model-based sweep, issue #16
