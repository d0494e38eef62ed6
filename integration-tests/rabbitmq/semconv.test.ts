/**
 * OpenTelemetry messaging semantic conventions (1.45.0) on RabbitMQ: one trace from publish to the
 * handler's own span, with the attributes (see integration-tests/src/semconv.ts).
 */
import { connect } from '@mqkit/core';
import { rabbitmq } from '@mqkit/rabbitmq';
import { afterAll, describe, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueGroup, uniqueTopic } from '../src/names.ts';
import { installTracing, traceOneMessage } from '../src/semconv.ts';
import { deleteTopicResources } from './cleanup.ts';

const { url } = requireBroker('rabbitmq');
const tracing = installTracing();
const topics = new Set<string>();
afterAll(async () => {
  await tracing.uninstall();
  await deleteTopicResources(url, topics);
});

describe('rabbitmq: messaging semantic conventions', () => {
  it('send → process → handler span → ack, one trace, messaging.system rabbitmq', async () => {
    const client = await connect(url, { adapters: [rabbitmq()], meterProvider: tracing.meterProvider });
    try {
      const topic = uniqueTopic('semconv');
      topics.add(topic);
      await traceOneMessage(tracing, client, { topic, group: uniqueGroup('semconv'), system: 'rabbitmq' });
    } finally {
      await client.close();
    }
  });
});
