/**
 * OpenTelemetry messaging semantic conventions (1.45.0) on Kafka: one trace from publish to the
 * handler's own span, with the attributes (see integration-tests/src/semconv.ts).
 */
import { afterAll, describe, it } from 'vitest';
import { uniqueGroup } from '../src/names.ts';
import { installTracing, traceOneMessage } from '../src/semconv.ts';
import { connectKafka, createTopic } from './harness.ts';

const tracing = installTracing();
afterAll(() => tracing.uninstall());

describe('kafka: messaging semantic conventions', () => {
  it('send → process → handler span → ack, one trace, messaging.system kafka', async () => {
    const client = await connectKafka({ meterProvider: tracing.meterProvider });
    try {
      const topic = await createTopic('semconv', 1);
      await traceOneMessage(tracing, client, { topic, group: uniqueGroup('semconv'), system: 'kafka', timeoutMs: 60_000 });
    } finally {
      await client.close();
    }
  });
});
