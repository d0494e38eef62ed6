/**
 * SNS fan-out mode (`sns=true`) against moto (`endpoints.sqs.snsEndpoint`, SNS + SQS in one
 * emulator): a topic is an SNS topic, each group an SQS queue subscribed with raw delivery.
 *
 * moto is slow (~150 sends/s, and it rescans queues per send), so this runs the scenarios that
 * exercise what differs from queue mode (topology, fan-out, filter policies, FIFO topics, delay
 * emulation, dead letters through SNS, attributes through SNS); the rest of the suite runs on
 * ElasticMQ in conformance.test.ts. Queues and topics get unique names; moto is never reset.
 */
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { Client } from '@mqkit/core';
import { sqsCapabilities, nativeTopicName } from '@mqkit/sqs';
import { eventually, pause, Recorder, runScenario, scenarios, skipReason, type ConformanceHarness } from '@mqkit/testing/conformance';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../src/names.ts';
import { connectSqs, rawConfig } from './harness.ts';

const harness: ConformanceHarness = {
  name: 'sqs (SNS fan-out, moto)',
  capabilities: sqsCapabilities({ sns: true }),
  connect: () => connectSqs('sns'),
  topic: async (needs) => uniqueName('sns', { fifo: needs.ordered === true }),
  subscribeOptions: { visibilityTimeoutSec: 5, waitTimeSec: 2 },
  timing: { deliveryMs: 15_000, redeliveryMs: 10_000, quietMs: 1_000, testMs: 90_000, delayMs: 1_500 },
};

/** The scenarios run on moto (the others run on ElasticMQ, see the module comment). */
const ON_MOTO = [
  'publish-delivers',
  'batch-outcomes',
  'fan-out-across-groups',
  'competing-consumers',
  'dead-letter-after-max-attempts',
  'explicit-dead-letter',
  'key-ordering',
  'key-ordering-with-retry',
  'headers-round-trip',
  'trace-context',
  'delay-on-publish',
  'binary-payload',
  'capabilities-match',
  'declared-group-keeps-early-messages', // a group's queue subscribed by client.declare() before anything is published
];

describe(`mqkit conformance subset: ${harness.name}`, () => {
  for (const id of ON_MOTO) {
    const scenario = scenarios.find((s) => s.id === id);
    it(`[${id}] ${scenario?.title ?? 'missing scenario'}`, async () => {
      expect(scenario, `scenario ${id} exists`).toBeDefined();
      expect(skipReason(scenario!, harness)).toBeUndefined();
      await runScenario(scenario!, harness);
    }, 90_000);
  }
});

describe('SNS specifics on moto', () => {
  const clients: Client[] = [];
  const sns = new SNSClient(rawConfig('sns'));
  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close({ timeoutMs: 0 })));
    sns.destroy();
  });
  const open = async (): Promise<Client> => {
    const c = await connectSqs('sns');
    clients.push(c);
    return c;
  };

  it('a filter policy on a group selects messages by a mirrored application header', async () => {
    const client = await open();
    const topic = uniqueName('sns-filter');
    const eu = new Recorder<{ n: number }>();
    const all = new Recorder<{ n: number }>();
    const options = { visibilityTimeoutSec: 5, waitTimeSec: 2 };
    await client.subscribe<{ n: number }>(topic, { group: 'eu', handler: (d) => eu.record(d), options: { ...options, filterPolicy: { region: ['eu'] } } });
    await client.subscribe<{ n: number }>(topic, { group: 'all', handler: (d) => all.record(d), options });
    await client.publishBatch([
      { topic, payload: { n: 1 }, headers: { region: 'eu' } },
      { topic, payload: { n: 2 }, headers: { region: 'us' } },
      { topic, payload: { n: 3 } },
      { topic, payload: { n: 4 }, headers: { region: 'eu' } },
    ]);
    await eventually('all four in the unfiltered group and two in eu', 15_000, () => all.uniqueIds().size >= 4 && eu.uniqueIds().size >= 2);
    await pause(1_500);
    expect(eu.deliveries.map((d) => d.payload.n).sort()).toEqual([1, 4]);
    expect(all.deliveries.map((d) => d.payload.n).sort()).toEqual([1, 2, 3, 4]);
  }, 60_000);

  it('a message published to SNS by another producer (no mqkit attribute) is still delivered', async () => {
    const client = await open();
    const topic = uniqueName('sns-foreign');
    const got = new Recorder<{ hello: string }>();
    await client.subscribe<{ hello: string }>(topic, { group: 'g', handler: (d) => got.record(d), options: { visibilityTimeoutSec: 5, waitTimeSec: 2 } });
    const arn = `arn:aws:sns:${rawConfig('sns').region}:123456789012:${nativeTopicName(topic)}`;
    const r = await sns.send(new PublishCommand({ TopicArn: arn, Message: '{"hello":"world"}', MessageAttributes: { tenant: { DataType: 'String', StringValue: 'acme' } } }));
    await eventually('the foreign message', 15_000, () => got.deliveries.length >= 1);
    expect(got.deliveries[0]!.payload).toEqual({ hello: 'world' });
    expect(got.deliveries[0]!.headers.tenant).toBe('acme');
    expect(got.deliveries[0]!.id).toBeTruthy();
    expect(r.MessageId).toBeTruthy();
  }, 60_000);
});
