/**
 * No double spans with @platformatic/kafka-opentelemetry registered: the instrumentation is shown
 * to record @platformatic/kafka's own sends (a raw producer), and none of its spans appear in the
 * trace of a message mqkit publishes and consumes over @platformatic/kafka (`client=platformatic`,
 * whichever client the project runs the other suites on), nor anywhere since.
 * (It listens on @platformatic/kafka's diagnostics channels: no module patching, so no import order.)
 */
import { connect } from '@mqkit/core';
import { kafka } from '@mqkit/kafka';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { Producer, stringSerializers } from '@platformatic/kafka';
import { KafkaInstrumentation } from '@platformatic/kafka-opentelemetry';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueGroup } from '../src/names.ts';
import { foreignSpans, installTracing, traceOneMessage } from '../src/semconv.ts';
import { brokers, createTopic } from './harness.ts';

const tracing = installTracing();
const unregister = registerInstrumentations({ instrumentations: [new KafkaInstrumentation()], tracerProvider: tracing.provider });

const SCOPE = '@platformatic/kafka-opentelemetry';
afterAll(async () => {
  unregister();
  await tracing.uninstall();
});

describe('kafka (@platformatic/kafka) with @platformatic/kafka-opentelemetry', () => {
  it('the instrumentation is active: a raw @platformatic/kafka send records its span', async () => {
    const topic = await createTopic('raw-instr', 1);
    const producer = new Producer({ clientId: 'mqkit-it-instr', bootstrapBrokers: brokers.split(','), serializers: stringSerializers });
    try {
      await producer.send({ messages: [{ topic, value: 'x' }] });
    } finally {
      await producer.close();
    }
    expect(tracing.spans().filter((s) => s.instrumentationScope.name === SCOPE).map((s) => s.name)).toContain(`send to ${topic}`);
  });

  it('mqkit publish → consume → ack: only mqkit’s spans and the handler’s in the trace, no @platformatic/kafka span at all', async () => {
    const before = new Set(tracing.spans());
    const client = await connect(`kafka://${brokers}?clientId=mqkit-it-instr&client=platformatic`, { adapters: [kafka()], meterProvider: tracing.meterProvider });
    try {
      const topic = await createTopic('semconv-plt', 1);
      const t = await traceOneMessage(tracing, client, { topic, group: uniqueGroup('semconv'), system: 'kafka', timeoutMs: 60_000 });
      expect(foreignSpans(t.trace).map((s) => `${s.instrumentationScope.name}: ${s.name}`)).toEqual([]);
    } finally {
      await client.close();
    }
    const pltSpans = tracing.spans().filter((s) => !before.has(s) && s.instrumentationScope.name === SCOPE);
    expect(pltSpans.map((s) => `${s.name} (${s.parentSpanContext ? 'child' : 'root'})`)).toEqual([]);
  });
});
