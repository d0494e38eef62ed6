/**
 * No double spans with @opentelemetry/instrumentation-kafkajs registered: the instrumentation is
 * shown to record kafkajs' own calls (a raw producer send), and none of its spans appear in the
 * trace of a message mqkit publishes and consumes over kafkajs (`client=kafkajs`, whichever
 * client the project runs the other suites on).
 */
import { createRequire } from 'node:module';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { KafkaJsInstrumentation } from '@opentelemetry/instrumentation-kafkajs';
import { connect } from '@mqkit/core';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueGroup } from '../src/names.ts';
import { foreignSpans, installTracing, traceOneMessage } from '../src/semconv.ts';

const tracing = installTracing();
const unregister = registerInstrumentations({ instrumentations: [new KafkaJsInstrumentation()], tracerProvider: tracing.provider });
// Loaded only now, and through require(): the instrumentation patches kafkajs' exports in its
// require hook (Kafka.prototype, shared with the ESM import below), which import() does not run.
createRequire(import.meta.url)('kafkajs');
const { Kafka, logLevel } = await import('kafkajs');
const { kafka } = await import('@mqkit/kafka');
const { brokers, createTopic } = await import('./harness.ts');

const SCOPE = '@opentelemetry/instrumentation-kafkajs';
afterAll(async () => {
  unregister();
  await tracing.uninstall();
});

describe('kafka (kafkajs) with @opentelemetry/instrumentation-kafkajs', () => {
  it('the instrumentation is active: a raw kafkajs send records its span', async () => {
    const topic = await createTopic('raw-instr', 1);
    const producer = new Kafka({ clientId: 'mqkit-it-instr', brokers: brokers.split(','), logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    try {
      await producer.send({ topic, messages: [{ value: 'x' }] });
    } finally {
      await producer.disconnect();
    }
    expect(tracing.spans().filter((s) => s.instrumentationScope.name === SCOPE).map((s) => s.name)).toContain(`send ${topic}`);
  });

  it('mqkit publish → consume → ack: only mqkit’s spans and the handler’s in the trace; no kafkajs send or process span', async () => {
    const before = new Set(tracing.spans());
    const client = await connect(`kafka://${brokers}?clientId=mqkit-it-instr&client=kafkajs`, { adapters: [kafka()], meterProvider: tracing.meterProvider });
    const topic = await createTopic('semconv-kafkajs', 1);
    try {
      const t = await traceOneMessage(tracing, client, { topic, group: uniqueGroup('semconv'), system: 'kafka', timeoutMs: 60_000 });
      expect(foreignSpans(t.trace).map((s) => `${s.instrumentationScope.name}: ${s.name}`)).toEqual([]);
    } finally {
      await client.close();
    }
    // Not even a trace of its own: the instrumentation's `poll {topic}` span per fetched batch
    // (started on ROOT_CONTEXT, out of reach of a suppressed context) is gone too, because the
    // adapter calls consumer.run past the wrapper (uninstrumented(), as the RabbitMQ receiver does).
    const kafkajsSpans = tracing.spans().filter((s) => !before.has(s) && s.instrumentationScope.name === SCOPE);
    expect(kafkajsSpans.map((s) => `${s.name} (${s.parentSpanContext ? 'child' : 'root'})`)).toEqual([]);
  });
});
