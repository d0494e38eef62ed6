import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { memory } from '@mqkit/testing';
import { uniqueName } from '@mqkit/testing/conformance';
import { describe, expect, it } from 'vitest';
import { connect } from './connect.ts';
import { TestMetricReader } from './metric-reader.test-util.ts';

describe('metrics', () => {
  it('counts published, confirmed, acked, retried, dead-lettered and handler runs', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const client = await connect(`memory://${uniqueName('metrics')}`, { adapters: [memory()], meterProvider });
    let handled = 0;
    await client.subscribe<{ fail: boolean }>('t', {
      group: 'g',
      retry: { maxAttempts: 2, initialDelayMs: 5, maxDelayMs: 5, jitter: false },
      handler: (d) => {
        handled += 1;
        if (d.payload.fail) throw new Error('boom');
      },
    });
    await client.publish('t', { fail: false });
    await client.publish('t', { fail: true });
    const deadline = Date.now() + 5_000;
    while (handled < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    const m = await reader.values();
    expect(m['mqkit.messages.published']).toBe(3); // two publishes + one dead letter
    expect(m['mqkit.messages.confirmed']).toBe(3); // two publishes + one dead letter
    expect(m['mqkit.messages.acked']).toBe(1);
    expect(m['mqkit.messages.retried']).toBe(1);
    expect(m['mqkit.messages.dead_lettered']).toBe(1);
    expect(m['mqkit.handler.duration']).toBe(3);
    await client.close();
  });
});
