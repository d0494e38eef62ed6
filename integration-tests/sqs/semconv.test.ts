/**
 * OpenTelemetry messaging semantic conventions (1.45.0) on SQS (ElasticMQ; and moto with SNS, where
 * sends are `aws.sns`): one trace from publish
 * to the handler's own span, with the attributes (see integration-tests/src/semconv.ts).
 */
import { afterAll, describe, it } from 'vitest';
import { uniqueName } from '../src/names.ts';
import { installTracing, traceOneMessage } from '../src/semconv.ts';
import { connectSqs, deleteTopicQueues } from './harness.ts';

const tracing = installTracing();
const topics: string[] = [];
afterAll(async () => {
  await tracing.uninstall();
  await deleteTopicQueues(topics);
});

describe('sqs: messaging semantic conventions', () => {
  it('send → process → handler span → ack, one trace, messaging.system aws_sqs', async () => {
    const client = await connectSqs('queue', { meterProvider: tracing.meterProvider });
    try {
      const topic = uniqueName('semconv');
      topics.push(topic);
      await traceOneMessage(tracing, client, {
        topic,
        group: 'semconv',
        system: 'aws_sqs',
        subscribe: { options: { visibilityTimeoutSec: 5, waitTimeSec: 2 } },
      });
    } finally {
      await client.close();
    }
  });

  it('with SNS (moto): the send span and metrics say aws.sns, the process and ack spans aws_sqs, one trace', async () => {
    const client = await connectSqs('sns', { meterProvider: tracing.meterProvider });
    try {
      const topic = uniqueName('semconvsns');
      await traceOneMessage(tracing, client, {
        topic,
        group: 'semconv',
        system: 'aws_sqs',
        sendSystem: 'aws.sns',
        subscribe: { options: { visibilityTimeoutSec: 5, waitTimeSec: 2 } },
      });
    } finally {
      await client.close();
    }
  });
});
