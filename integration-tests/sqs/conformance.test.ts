/**
 * The mqkit conformance suite against ElasticMQ (`endpoints.sqs.endpoint`) in queue mode
 * (`sns=false`): a topic is one SQS queue, groups compete on it.
 *
 * Scenarios the adapter cannot run are not registered as skipped tests (the integration runner
 * fails on any skipped test); instead one test pins the exact set of skipped scenario ids and
 * their reasons, so a new skip cannot slip in unnoticed.
 */
import { runModelConformance, runScenario, scenarios, skipReason, type ConformanceHarness } from '@mqkit/testing/conformance';
import { sqsCapabilities } from '@mqkit/sqs';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../src/names.ts';
import { connectSqs, deleteTopicQueues } from './harness.ts';

const topics: string[] = [];

const harness: ConformanceHarness = {
  name: 'sqs (queue mode, ElasticMQ)',
  capabilities: sqsCapabilities({ sns: false }),
  connect: () => connectSqs('queue'),
  topic: async (needs) => {
    const topic = uniqueName('conf', { fifo: needs.ordered === true });
    topics.push(topic);
    return topic;
  },
  // Short visibility so that messages of a consumer that died come back quickly; short long polls
  // so that closing is quick.
  subscribeOptions: { visibilityTimeoutSec: 5, waitTimeSec: 2 },
  timing: { deliveryMs: 10_000, redeliveryMs: 10_000, quietMs: 1_000, testMs: 60_000, delayMs: 1_500 },
  skip: {
    'fan-out-across-groups': 'queue mode (sns=false): groups compete on one queue; fan-out is tested on moto in SNS mode',
  },
};

const EXPECTED_SKIPS = {
  'fan-out-across-groups': harness.skip!['fan-out-across-groups'],
  'transaction-commit-and-abort': 'capabilities.transactions is false',
};

describe(`mqkit conformance: ${harness.name}`, () => {
  afterAll(() => deleteTopicQueues(topics));

  for (const scenario of scenarios) {
    if (skipReason(scenario, harness) !== undefined) continue;
    it(`[${scenario.id}] ${scenario.title}`, () => runScenario(scenario, harness), 60_000);
  }

  it('skips exactly the scenarios it cannot run, by name', () => {
    const skipped = Object.fromEntries(scenarios.flatMap((s) => (skipReason(s, harness) === undefined ? [] : [[s.id, skipReason(s, harness)]])));
    expect(skipped).toEqual(EXPECTED_SKIPS);
  });
});

runModelConformance(harness, { runs: 6, workload: { orderedRepublishDedupMs: 15_000 } }); // model-based sweep, issue #16 (FIFO drops a republished id)
