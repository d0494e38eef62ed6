/**
 * No double spans with @opentelemetry/instrumentation-aws-sdk registered: the instrumentation is
 * shown to record the AWS SDK's own calls (a raw ListQueues), and mqkit's publish, receive loop
 * and ack make no AWS SDK span at all (SendMessage, ReceiveMessage, DeleteMessage run untraced).
 */
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { AwsInstrumentation } from '@opentelemetry/instrumentation-aws-sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../src/names.ts';
import { foreignSpans, installTracing, traceOneMessage } from '../src/semconv.ts';

const tracing = installTracing();
const unregister = registerInstrumentations({ instrumentations: [new AwsInstrumentation()], tracerProvider: tracing.provider });
// Loaded only now: the instrumentation patches the AWS SDK's modules as they are first required.
const { SQSClient, ListQueuesCommand } = await import('@aws-sdk/client-sqs');
const { connectSqs, deleteTopicQueues, rawConfig } = await import('./harness.ts');

const SCOPE = '@opentelemetry/instrumentation-aws-sdk';
const topics: string[] = [];
afterAll(async () => {
  unregister();
  await tracing.uninstall();
  await deleteTopicQueues(topics);
});

describe('sqs with @opentelemetry/instrumentation-aws-sdk', () => {
  it('the instrumentation is active: a raw SQS call records its span', async () => {
    const raw = new SQSClient(rawConfig('queue'));
    try {
      await raw.send(new ListQueuesCommand({}));
    } finally {
      raw.destroy();
    }
    expect(tracing.spans().filter((s) => s.instrumentationScope.name === SCOPE).map((s) => s.name)).toContain('SQS.ListQueues');
  });

  it('mqkit publish → consume → ack: only mqkit’s spans and the handler’s in the trace, no AWS SDK span at all', async () => {
    const before = new Set(tracing.spans());
    const client = await connectSqs('queue', { meterProvider: tracing.meterProvider });
    try {
      const topic = uniqueName('semconv-aws');
      topics.push(topic);
      const t = await traceOneMessage(tracing, client, { topic, group: 'semconv', system: 'aws_sqs', subscribe: { options: { visibilityTimeoutSec: 5, waitTimeSec: 1 } } });
      expect(foreignSpans(t.trace).map((s) => `${s.instrumentationScope.name}: ${s.name}`)).toEqual([]);
    } finally {
      await client.close();
    }
    const sdkSpans = tracing.spans().filter((s) => !before.has(s) && s.instrumentationScope.name === SCOPE);
    expect(sdkSpans.map((s) => s.name)).toEqual([]);
  });
});
