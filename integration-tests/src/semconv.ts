/**
 * The OpenTelemetry messaging semantic-convention checks every broker's `semconv.test.ts` runs
 * (and the contrib-instrumentation suites): an in-memory span exporter behind the global tracer
 * provider (so instrumentations of broker clients record into it too), W3C propagation, and one
 * message followed from `publish()` to the handler's own span, the client's metrics for it, and
 * `client.health()`.
 */
import { context, propagation, SpanKind, trace, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Client, SubscribeOptions } from '@mqkit/core';
import { expect } from 'vitest';
import { waitFor } from './wait.ts';

/** A metric reader collected on demand (cumulative). */
class TestMetricReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/** One metric point: its name, unit, attributes and value (a histogram's count). */
export interface MetricPoint {
  readonly name: string;
  readonly unit: string;
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly value: number;
}

export interface Tracing {
  readonly exporter: InMemorySpanExporter;
  readonly provider: BasicTracerProvider;
  /** Pass to `connect({ meterProvider })`: what {@link Tracing.metrics} reads. */
  readonly meterProvider: MeterProvider;
  /** Every metric point so far. */
  metrics(): Promise<MetricPoint[]>;
  /** Spans finished so far. */
  spans(): ReadableSpan[];
  /** Undoes the global registration. */
  uninstall(): Promise<void>;
}

/** Registers an SDK with an in-memory exporter as the global tracer provider, context manager and propagator. */
export function installTracing(): Tracing {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const reader = new TestMetricReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  return {
    exporter,
    provider,
    meterProvider,
    async metrics() {
      const { resourceMetrics } = await reader.collect();
      return resourceMetrics.scopeMetrics.flatMap((scope) =>
        scope.metrics.flatMap((m) =>
          m.dataPoints.map((p) => {
            const v = p.value as number | { count: number };
            return { name: m.descriptor.name, unit: m.descriptor.unit, attributes: p.attributes, value: typeof v === 'number' ? v : v.count };
          }),
        ),
      );
    },
    spans: () => exporter.getFinishedSpans(),
    async uninstall() {
      await meterProvider.shutdown();
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

/** What {@link traceOneMessage} found: mqkit's spans of the message and everything in its trace. */
export interface MessageTrace {
  readonly send: ReadableSpan;
  readonly process: ReadableSpan;
  readonly handler: ReadableSpan;
  readonly ack: ReadableSpan;
  /** Every span of the message's trace (mqkit's, the handler's and any other). */
  readonly trace: readonly ReadableSpan[];
  readonly id: string;
}

const MQKIT_SCOPE = '@mqkit/core';

/**
 * Subscribes `group` to `topic`, publishes one message, and checks the trace the conventions
 * (1.45.0) ask for: `send {topic}` PRODUCER → `process {topic}` CONSUMER (child of the creation
 * context and linked to it) → the handler's own span → `ack {topic}` CLIENT, with the attributes.
 */
export async function traceOneMessage(
  tracing: Tracing,
  client: Client,
  args: { topic: string; group: string; system: string; sendSystem?: string; subscribe?: Partial<SubscribeOptions>; timeoutMs?: number },
): Promise<MessageTrace> {
  const { topic, group, system } = args;
  // What sends go to, when it is another system (SQS with SNS: aws.sns)
  const sendSystem = args.sendSystem ?? system;
  const app = tracing.provider.getTracer('app');
  const handled = new Set<string>();
  const sub = await client.subscribe(topic, {
    ...args.subscribe,
    group,
    handler: (d) => {
      const span: Span = app.startSpan('handle order');
      span.setAttribute('order.id', d.id);
      span.end();
      handled.add(d.id);
    },
  });
  try {
    const { id } = await client.publish(topic, { n: 1 });
    const ackOf = (): ReadableSpan | undefined => tracing.spans().find((s) => s.name === `ack ${topic}` && s.attributes['messaging.message.id'] === id);
    const ack = await waitFor(`the ack span of ${id}`, ackOf, { timeoutMs: args.timeoutMs ?? 30_000, intervalMs: 50 });
    const traceId = ack.spanContext().traceId;
    const inTrace = tracing.spans().filter((s) => s.spanContext().traceId === traceId);
    const only = (name: string): ReadableSpan => {
      const found = inTrace.filter((s) => s.name === name);
      expect(found.map((s) => s.name), `spans named ${name}`).toEqual([name]);
      return found[0]!;
    };
    const send = only(`send ${topic}`);
    const process = only(`process ${topic}`);
    const handler = only('handle order');
    expect(handled.has(id)).toBe(true);

    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(process.kind).toBe(SpanKind.CONSUMER);
    expect(ack.kind).toBe(SpanKind.CLIENT);
    for (const s of [send, process, ack]) expect(s.instrumentationScope.schemaUrl).toBe('https://opentelemetry.io/schemas/1.45.0');

    // One trace: publish → process (child of the creation context, and linked to it) → handler → ack.
    expect(process.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
    expect(process.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId]);
    expect(handler.parentSpanContext?.spanId).toBe(process.spanContext().spanId);
    expect(ack.parentSpanContext?.spanId).toBe(process.spanContext().spanId);

    expect(send.attributes).toEqual({
      'messaging.system': sendSystem,
      'messaging.operation.name': 'send',
      'messaging.operation.type': 'send',
      'messaging.destination.name': topic,
      'messaging.message.id': id,
    });
    expect(process.attributes).toEqual({
      'messaging.system': system,
      'messaging.operation.name': 'process',
      'messaging.operation.type': 'process',
      'messaging.destination.name': topic,
      'messaging.consumer.group.name': group,
      'messaging.message.id': id,
    });
    expect(ack.attributes).toEqual({
      'messaging.system': system,
      'messaging.operation.name': 'ack',
      'messaging.operation.type': 'settle',
      'messaging.destination.name': topic,
      'messaging.consumer.group.name': group,
      'messaging.message.id': id,
    });
    for (const s of [send, process, handler, ack]) expect(s.status.code, s.name).not.toBe(2);
    await expectMetrics(tracing, topic, group, system, sendSystem);
    // And the client reports itself ready, with the subscription running, on the real broker.
    const health = client.health();
    expect(health).toMatchObject({ status: 'ok', ready: true, live: true, publisher: { state: 'ok' } });
    expect(health.subscriptions.find((s) => s.topic === topic && s.group === group)?.state).toMatch(/^(running|paused)$/);
    return { send, process, handler, ack, trace: inTrace, id };
  } finally {
    await sub.close();
  }
}

/**
 * The client's metrics for the message (when it was connected with `tracing.meterProvider`):
 * send and ack durations, process duration, sent and consumed counts, in seconds.
 */
async function expectMetrics(tracing: Tracing, topic: string, group: string, system: string, sendSystem: string): Promise<void> {
  const points = (await tracing.metrics()).filter((p) => p.attributes['messaging.destination.name'] === topic);
  const value = (name: string, attrs: Record<string, unknown>): number | undefined =>
    points.find((p) => p.name === name && Object.entries(attrs).every(([k, v]) => p.attributes[k] === v))?.value;
  const base = { 'messaging.system': system };
  const sent = { 'messaging.system': sendSystem };
  expect(value('messaging.client.operation.duration', { ...sent, 'messaging.operation.name': 'send', 'messaging.operation.type': 'send' })).toBe(1);
  expect(value('messaging.client.sent.messages', { ...sent, 'messaging.operation.name': 'send' })).toBe(1);
  expect(value('messaging.client.consumed.messages', { ...base, 'messaging.consumer.group.name': group })).toBe(1);
  expect(value('messaging.process.duration', { ...base, 'messaging.operation.name': 'process', 'messaging.consumer.group.name': group })).toBe(1);
  expect(value('messaging.client.operation.duration', { ...base, 'messaging.operation.name': 'ack', 'messaging.operation.type': 'settle', 'messaging.consumer.group.name': group })).toBe(1);
  expect(points.find((p) => p.name === 'messaging.client.operation.duration')?.unit).toBe('s');
}

/** The spans of `spans` made by another instrumentation scope than mqkit's and the test's own. */
export function foreignSpans(spans: readonly ReadableSpan[]): ReadableSpan[] {
  return spans.filter((s) => s.instrumentationScope.name !== MQKIT_SCOPE && s.instrumentationScope.name !== 'app');
}
