/**
 * OpenTelemetry messaging semantic conventions (1.45.0) on RocketMQ 5: one trace from publish to
 * the handler's own span, with the attributes (see integration-tests/src/semconv.ts).
 */
import { afterAll, describe, it } from 'vitest';
import { uniqueGroup } from '../src/names.ts';
import { installTracing, traceOneMessage } from '../src/semconv.ts';
import { connectRocketmq, freshTopic } from './mqkit-support.ts';

const tracing = installTracing();
afterAll(() => tracing.uninstall());

describe('rocketmq: messaging semantic conventions', () => {
  it('send → process → handler span → ack, one trace, messaging.system rocketmq', async () => {
    const client = await connectRocketmq({}, { meterProvider: tracing.meterProvider });
    try {
      const topic = await freshTopic('semconv', 'NORMAL');
      await traceOneMessage(tracing, client, { topic, group: uniqueGroup('semconv'), system: 'rocketmq', timeoutMs: 60_000 });
    } finally {
      await client.close();
    }
  });
});
