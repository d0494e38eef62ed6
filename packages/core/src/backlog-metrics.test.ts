import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { memory, ops as memoryOps } from '@mqkit/testing';
import { uniqueName } from '@mqkit/testing/conformance';
import { describe, expect, it } from 'vitest';
import { observeBacklog } from './backlog-metrics.ts';
import { connect } from './connect.ts';
import type { DriverOps } from './driver/ops.ts';
import { TestMetricReader } from './metric-reader.test-util.ts';
import { silentLogger } from './logger.ts';

interface Point {
  name: string;
  value: number;
  attributes: Record<string, unknown>;
}

async function collect(reader: TestMetricReader): Promise<Point[]> {
  const { resourceMetrics } = await reader.collect();
  return resourceMetrics.scopeMetrics.flatMap((s) =>
    s.metrics.flatMap((m) => m.dataPoints.map((p) => ({ name: m.descriptor.name, value: p.value as number, attributes: p.attributes }))),
  );
}

describe('observeBacklog', () => {
  it('reports each group’s backlog and the dead-letter depth through the adapter’s ops, at each collection', async () => {
    const url = `memory://${uniqueName('backlog')}`;
    const mq = await connect(url, { adapters: [memory()] });
    await mq.declare({ topic: 'orders', groups: ['billing', 'shipping'] });
    await mq.declare({ topic: 'orders-dlq', groups: [] });
    for (let i = 0; i < 3; i++) await mq.publish('orders', { i });
    await mq.publish('orders-dlq', { dead: true });
    const ops = await memoryOps().create(url, {}, { logger: silentLogger });
    const reader = new TestMetricReader();
    const metering = observeBacklog({ ops, topics: [{ topic: 'orders' }], meterProvider: new MeterProvider({ readers: [reader] }) });

    let points = await collect(reader);
    const backlog = (group: string): number | undefined =>
      points.find((p) => p.name === 'mqkit.consumer.backlog' && p.attributes['messaging.consumer.group.name'] === group)?.value;
    expect(backlog('billing')).toBe(3);
    expect(backlog('shipping')).toBe(3);
    expect(points.find((p) => p.name === 'mqkit.consumer.backlog')?.attributes).toMatchObject({ 'messaging.system': 'memory', 'messaging.destination.name': 'orders' });
    expect(points.find((p) => p.name === 'mqkit.dead_letter.depth')).toMatchObject({ value: 1, attributes: { 'messaging.system': 'memory', 'messaging.destination.name': 'orders-dlq' } });

    // Read again at the next collection: billing consumes everything.
    let handled = 0;
    await mq.subscribe('orders', { group: 'billing', handler: () => void (handled += 1) });
    const deadline = Date.now() + 5_000;
    while (handled < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    points = await collect(reader);
    expect(backlog('billing')).toBe(0);
    expect(backlog('shipping')).toBe(3);

    metering.stop();
    await ops.close();
    await mq.close();
  });

  it('a read that fails or hangs is left out and logged; the others are still reported', async () => {
    const warned: string[] = [];
    const fake = {
      name: 'sqs',
      backlog: (topic: string) =>
        topic === 'slow' ? new Promise<never>(() => {}) : topic === 'gone' ? Promise.reject(new Error('no such queue')) : Promise.resolve([{ topic, group: 'g', partition: '2', backlog: 7 }]),
      depth: () => Promise.resolve(4),
    } as unknown as DriverOps;
    const reader = new TestMetricReader();
    const metering = observeBacklog({
      ops: fake,
      topics: [{ topic: 'ok', group: 'g', deadLetterTopic: false }, { topic: 'slow' }, { topic: 'gone' }],
      meterProvider: new MeterProvider({ readers: [reader] }),
      timeoutMs: 50,
      logger: { ...silentLogger, warn: (_o: object, m?: string) => void warned.push(m ?? '') },
    });
    const points = await collect(reader);
    expect(points.filter((p) => p.name === 'mqkit.consumer.backlog')).toEqual([
      { name: 'mqkit.consumer.backlog', value: 7, attributes: { 'messaging.system': 'aws_sqs', 'messaging.destination.name': 'ok', 'messaging.consumer.group.name': 'g', 'messaging.destination.partition.id': '2' } },
    ]);
    expect(points.filter((p) => p.name === 'mqkit.dead_letter.depth').map((p) => p.attributes['messaging.destination.name']).sort()).toEqual(['gone-dlq', 'slow-dlq']);
    expect(warned).toHaveLength(2);
    metering.stop();
  });

  it('rejects bad options with CONFIG', () => {
    expect(() => observeBacklog({ ops: {} as DriverOps, topics: [{ topic: 't' }] })).toThrow(expect.objectContaining({ code: 'CONFIG' }) as Error);
    expect(() => observeBacklog({ ops: { backlog() {}, depth() {} } as unknown as DriverOps, topics: [] })).toThrow(expect.objectContaining({ code: 'CONFIG' }) as Error);
  });
});
