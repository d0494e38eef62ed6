/**
 * OpenTelemetry messaging semantic conventions (1.45.0) on Redis Streams: one trace from publish
 * to the handler's own span, with the attributes (see integration-tests/src/semconv.ts).
 * `messaging.system` is `redis`: the conventions have no well-known value for it.
 */
import { afterAll, describe, it } from 'vitest';
import { uniqueGroup, uniqueName } from '../src/names.ts';
import { installTracing, traceOneMessage } from '../src/semconv.ts';
import { connectStreams, deleteTopics } from './harness.ts';

const tracing = installTracing();
const topics: string[] = [];
afterAll(async () => {
  await tracing.uninstall();
  await deleteTopics(topics);
});

describe('redis-streams: messaging semantic conventions', () => {
  it('send → process → handler span → ack, one trace, messaging.system redis', async () => {
    const client = await connectStreams({ meterProvider: tracing.meterProvider });
    try {
      const topic = uniqueName('semconv');
      topics.push(topic);
      await traceOneMessage(tracing, client, { topic, group: uniqueGroup('semconv'), system: 'redis' });
    } finally {
      await client.close();
    }
  });
});
