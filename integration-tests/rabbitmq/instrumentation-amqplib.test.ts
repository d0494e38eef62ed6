/**
 * No double spans with @opentelemetry/instrumentation-amqplib registered: the instrumentation is
 * shown to record amqplib's own calls (a raw publish), and none of its spans appear in the trace
 * of a message mqkit publishes and consumes.
 */
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { AmqplibInstrumentation } from '@opentelemetry/instrumentation-amqplib';
import { connect } from '@mqkit/core';
import { afterAll, describe, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueGroup, uniqueTopic } from '../src/names.ts';
import { foreignSpans, installTracing, traceOneMessage } from '../src/semconv.ts';
import { waitFor } from '../src/wait.ts';

const { url } = requireBroker('rabbitmq');
const tracing = installTracing();
const instrumentation = new AmqplibInstrumentation();
const unregister = registerInstrumentations({ instrumentations: [instrumentation], tracerProvider: tracing.provider });
// Loaded only now: the instrumentation patches amqplib's modules as they are first required.
const amqplib = await import('amqplib');
const { rabbitmq } = await import('@mqkit/rabbitmq');
const { deleteTopicResources } = await import('./cleanup.ts');

const SCOPE = '@opentelemetry/instrumentation-amqplib';
const topics = new Set<string>();
afterAll(async () => {
  unregister();
  await tracing.uninstall();
  await deleteTopicResources(url, topics);
});

describe('rabbitmq with @opentelemetry/instrumentation-amqplib', () => {
  it('the instrumentation is active: a raw amqplib publish records its span', async () => {
    const conn = await amqplib.connect(url);
    try {
      const ch = await conn.createChannel();
      const queue = uniqueTopic('raw-instr');
      await ch.assertQueue(queue, { autoDelete: true });
      ch.sendToQueue(queue, Buffer.from('x'));
      await waitFor('the amqplib publish span', () => tracing.spans().some((s) => s.instrumentationScope.name === SCOPE), { timeoutMs: 5_000, intervalMs: 20 });
      await ch.deleteQueue(queue);
    } finally {
      await conn.close();
    }
  });

  it('mqkit publish → consume → ack: only mqkit’s spans and the handler’s in the trace, no amqplib span at all', async () => {
    const before = new Set(tracing.spans());
    const client = await connect(url, { adapters: [rabbitmq()], meterProvider: tracing.meterProvider });
    try {
      const topic = uniqueTopic('semconv-amqplib');
      topics.add(topic);
      const t = await traceOneMessage(tracing, client, { topic, group: uniqueGroup('semconv'), system: 'rabbitmq' });
      expect(foreignSpans(t.trace).map((s) => `${s.instrumentationScope.name}: ${s.name}`)).toEqual([]);
      const amqplibSpans = tracing.spans().filter((s) => !before.has(s) && s.instrumentationScope.name === SCOPE);
      expect(amqplibSpans.map((s) => s.name)).toEqual([]);
    } finally {
      await client.close();
    }
  });
});
