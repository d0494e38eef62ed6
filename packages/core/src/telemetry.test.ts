import { context, propagation, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { isTracingSuppressed, W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { memory } from '@mqkit/testing';
import { uniqueName } from '@mqkit/testing/conformance';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from './client.ts';
import { connect } from './connect.ts';
import type { Adapter, Driver } from './driver/driver.ts';
import { TestMetricReader } from './metric-reader.test-util.ts';
import { MqError } from './errors.ts';
import { SEMCONV_VERSION, untraced } from './telemetry.ts';

const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const appTracer = tracerProvider.getTracer('app');
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
});
afterAll(() => {
  context.disable();
  propagation.disable();
});
afterEach(() => exporter.reset());

async function until(what: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!what()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const spans = (): ReadableSpan[] => exporter.getFinishedSpans();
const named = (name: string): ReadableSpan[] => spans().filter((s) => s.name === name);
const one = (name: string): ReadableSpan => {
  const found = named(name);
  expect(found.map((s) => s.name)).toEqual([name]);
  return found[0]!;
};
const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;

async function client(extra: Parameters<typeof connect>[1] = {}): Promise<Client> {
  return connect(`memory://${uniqueName('otel')}`, { adapters: [memory()], tracerProvider, ...extra });
}

describe('tracing (messaging semantic conventions)', () => {
  it('states the convention version on the scope', async () => {
    const mq = await client();
    await mq.publish('orders', { n: 1 });
    expect(one('send orders').instrumentationScope).toMatchObject({ name: '@mqkit/core', schemaUrl: `https://opentelemetry.io/schemas/${SEMCONV_VERSION}` });
    await mq.close();
  });

  it('one trace from publish to the handler’s own span: send → process → handler span, then ack', async () => {
    const mq = await client();
    let handlerSpan: Span | undefined;
    await mq.subscribe('orders', {
      group: 'billing',
      handler: () => {
        handlerSpan = appTracer.startSpan('charge');
        handlerSpan.end();
      },
    });
    const receipt = await mq.publish('orders', { n: 1 });
    await until(() => named('ack orders').length === 1);
    const send = one('send orders');
    const process = one('process orders');
    const charge = one('charge');
    const ack = one('ack orders');
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(process.kind).toBe(SpanKind.CONSUMER);
    expect(ack.kind).toBe(SpanKind.CLIENT);
    const traceId = send.spanContext().traceId;
    for (const s of [process, charge, ack]) expect(s.spanContext().traceId).toBe(traceId);
    expect(parentOf(process)).toBe(send.spanContext().spanId);
    expect(process.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId]);
    expect(parentOf(charge)).toBe(process.spanContext().spanId);
    expect(parentOf(ack)).toBe(process.spanContext().spanId);
    expect(send.attributes).toEqual({
      'messaging.system': 'memory',
      'messaging.operation.name': 'send',
      'messaging.operation.type': 'send',
      'messaging.destination.name': 'orders',
      'messaging.message.id': receipt.id,
    });
    expect(process.attributes).toEqual({
      'messaging.system': 'memory',
      'messaging.operation.name': 'process',
      'messaging.operation.type': 'process',
      'messaging.destination.name': 'orders',
      'messaging.consumer.group.name': 'billing',
      'messaging.message.id': receipt.id,
    });
    expect(ack.attributes).toMatchObject({ 'messaging.operation.name': 'ack', 'messaging.operation.type': 'settle', 'messaging.consumer.group.name': 'billing', 'messaging.message.id': receipt.id });
    expect(handlerSpan).toBeDefined();
    await mq.close();
  });

  it('a driver that sends to another system (SQS with SNS) labels sends with it, receives with its own', async () => {
    const base = memory();
    // the memory driver as one whose sends go elsewhere: Driver.sendSystem
    const adapter: Adapter = {
      schemes: base.schemes,
      create: async (...args) => {
        const driver = await base.create(...args);
        return new Proxy(driver, {
          get(target, property) {
            if (property === 'sendSystem') return 'aws.sns';
            const value: unknown = Reflect.get(target, property, target);
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          },
        });
      },
    };
    const mq = await connect(`memory://${uniqueName('otel')}`, { adapters: [adapter], tracerProvider });
    await mq.subscribe('orders', { group: 'billing', handler: () => {} });
    await mq.publish('orders', { n: 1 });
    await until(() => named('ack orders').length === 1);
    expect(one('send orders').attributes['messaging.system']).toBe('aws.sns');
    expect(one('process orders').attributes['messaging.system']).toBe('memory');
    expect(one('ack orders').attributes['messaging.system']).toBe('memory');
    await mq.close();
  });

  it('a failing handler: process span with error.type and error status, nack, then dead_letter', async () => {
    const mq = await client();
    class PaymentDeclined extends Error {
      override name = 'PaymentDeclined';
    }
    await mq.subscribe('pay', {
      group: 'g',
      retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 1, jitter: false },
      handler: () => {
        throw new PaymentDeclined('declined');
      },
    });
    await mq.publish('pay', {});
    await until(() => named('dead_letter pay').length === 1);
    const processes = named('process pay');
    expect(processes).toHaveLength(2);
    for (const p of processes) {
      expect(p.attributes['error.type']).toBe('PaymentDeclined');
      expect(p.status).toEqual({ code: SpanStatusCode.ERROR, message: 'declined' });
    }
    expect(one('nack pay').attributes).toMatchObject({ 'messaging.operation.type': 'settle', 'messaging.consumer.group.name': 'g' });
    expect(one('dead_letter pay').attributes['error.type']).toBeUndefined();
    // The dead-letter publish keeps the message's creation context (no second send span).
    expect(named('send pay-dlq')).toHaveLength(0);
    await mq.close();
  });

  it('a failed publish: send span with error.type (the MqError code) and error status', async () => {
    const base = memory();
    const refusing: Adapter = {
      ...base,
      async create(url, options, ctx) {
        const driver = await base.create(url, options, ctx);
        const refuse: Driver['send'] = (envelopes) => Promise.resolve(envelopes.map(() => ({ ok: false as const, error: new MqError('UNROUTABLE', 'no route') })));
        return new Proxy(driver, {
          get(target, property) {
            if (property === 'send') return refuse;
            const v: unknown = Reflect.get(target, property, target);
            return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v;
          },
        });
      },
    };
    const mq = await connect(`memory://${uniqueName('otel')}`, { adapters: [refusing], tracerProvider });
    await expect(mq.publish('nowhere', {})).rejects.toMatchObject({ code: 'UNROUTABLE' });
    const send = one('send nowhere');
    expect(send.attributes['error.type']).toBe('UNROUTABLE');
    expect(send.status).toEqual({ code: SpanStatusCode.ERROR, message: 'no route' });
    await mq.close();
  });

  it('publishBatch: one CLIENT send span linked to a PRODUCER create span per message, the consumer parented to its create span', async () => {
    const mq = await client();
    const seen: string[] = [];
    await mq.subscribe('batch', { group: 'g', handler: (d) => void seen.push(d.id) });
    const outcomes = await mq.publishBatch([
      { topic: 'batch', payload: 1 },
      { topic: 'batch', payload: 2 },
    ]);
    await until(() => named('ack batch').length === 2);
    const send = one('send batch');
    const creates = named('create batch');
    expect(send.kind).toBe(SpanKind.CLIENT);
    expect(send.attributes['messaging.batch.message_count']).toBe(2);
    expect(creates.map((c) => c.kind)).toEqual([SpanKind.PRODUCER, SpanKind.PRODUCER]);
    expect(creates.map((c) => c.attributes['messaging.message.id']).sort()).toEqual(outcomes.map((o) => o.id).sort());
    expect(send.links.map((l) => l.context.spanId).sort()).toEqual(creates.map((c) => c.spanContext().spanId).sort());
    const createIds = new Set(creates.map((c) => c.spanContext().spanId));
    for (const p of named('process batch')) expect(createIds.has(parentOf(p)!)).toBe(true);
    await mq.close();
  });

  it('a batch over several topics: span name without destination', async () => {
    const mq = await client();
    await mq.publishBatch([
      { topic: 'a', payload: 1 },
      { topic: 'b', payload: 2 },
    ]);
    const send = one('send');
    expect(send.attributes['messaging.destination.name']).toBeUndefined();
    expect(named('create a')).toHaveLength(1);
    expect(named('create b')).toHaveLength(1);
    await mq.close();
  });

  it('prepare() (outbox, transactions) makes a create span; sendEnvelopes links its send span to it', async () => {
    const mq = await client();
    const envelope = mq.prepare('relayed', { n: 1 });
    const create = one('create relayed');
    expect(envelope.headers.traceparent).toContain(create.spanContext().spanId);
    await mq.sendEnvelopes([envelope]);
    const send = one('send relayed');
    expect(send.kind).toBe(SpanKind.CLIENT);
    expect(send.links.map((l) => l.context.spanId)).toEqual([create.spanContext().spanId]);
    await mq.close();
  });

  it('a message that carries a creation context keeps it; the send span links to it', async () => {
    const mq = await client();
    const upstream = appTracer.startSpan('upstream');
    const headers: Record<string, string> = {};
    propagation.inject(trace.setSpan(context.active(), upstream), headers);
    upstream.end();
    await mq.publish('fwd', {}, { headers });
    const send = one('send fwd');
    expect(send.links.map((l) => l.context.spanId)).toEqual([upstream.spanContext().spanId]);
    await mq.close();
  });

  it('publish inside an active span: the send span is its child', async () => {
    const mq = await client();
    const request = appTracer.startSpan('http');
    await context.with(trace.setSpan(context.active(), request), () => mq.publish('child', {}));
    request.end();
    expect(parentOf(one('send child'))).toBe(request.spanContext().spanId);
    await mq.close();
  });

  it('every driver call runs with tracing suppressed (no client-library spans under mqkit’s)', async () => {
    const suppressed: Record<string, boolean[]> = { send: [], receiver: [], receive: [], ack: [] };
    const note = (what: string): void => void suppressed[what]!.push(isTracingSuppressed(context.active()));
    const base = memory();
    const spying: Adapter = {
      ...base,
      async create(url, options, ctx) {
        const driver = await base.create(url, options, ctx);
        return new Proxy(driver, {
          get(target, property) {
            if (property === 'send') return (...args: Parameters<Driver['send']>) => (note('send'), target.send(...args));
            if (property === 'receiver') {
              return async (spec: Parameters<Driver['receiver']>[0]) => {
                note('receiver');
                const r = await target.receiver(spec);
                return new Proxy(r, {
                  get(rt, rp) {
                    if (rp === 'receive') return (...a: Parameters<typeof rt.receive>) => (note('receive'), rt.receive(...a));
                    if (rp === 'ack') return (...a: Parameters<typeof rt.ack>) => (note('ack'), rt.ack(...a));
                    const v: unknown = Reflect.get(rt, rp, rt);
                    return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(rt) : v;
                  },
                });
              };
            }
            const v: unknown = Reflect.get(target, property, target);
            return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v;
          },
        });
      },
    };
    const mq = await connect(`memory://${uniqueName('otel')}`, { adapters: [spying], tracerProvider });
    let inHandler: boolean | undefined;
    await mq.subscribe('s', { group: 'g', handler: () => void (inHandler = isTracingSuppressed(context.active())) });
    await mq.publish('s', {});
    await until(() => suppressed.ack!.length > 0);
    for (const [what, seen] of Object.entries(suppressed)) {
      expect(seen.length, what).toBeGreaterThan(0);
      expect(seen.every(Boolean), what).toBe(true);
    }
    // The application's own code is traced as usual.
    expect(inHandler).toBe(false);
    await mq.close();
  });

  it('untraced(): an SDK tracer records nothing inside', () => {
    const span = untraced(() => appTracer.startSpan('inside'), undefined);
    expect(span.isRecording()).toBe(false);
    span.end();
    expect(named('inside')).toHaveLength(0);
  });

  it('without an SDK: nothing records and the handler runs in the extracted context', async () => {
    const mq = await connect(`memory://${uniqueName('otel')}`, { adapters: [memory()] });
    let active: Span | undefined;
    let ran = false;
    await mq.subscribe('quiet', {
      group: 'g',
      handler: () => {
        active = trace.getActiveSpan();
        ran = true;
      },
    });
    await mq.publish('quiet', {});
    await until(() => ran);
    expect(active?.isRecording() ?? false).toBe(false);
    expect(spans()).toHaveLength(0);
    await mq.close();
  });
});

describe('metrics (messaging semantic conventions)', () => {
  it('send, process and settle durations, sent and consumed messages, with error.type on failures', async () => {
    const reader = new TestMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const mq = await connect(`memory://${uniqueName('metrics')}`, { adapters: [memory()], meterProvider });
    let handled = 0;
    await mq.subscribe<{ fail: boolean }>('t', {
      group: 'g',
      retry: { maxAttempts: 2, initialDelayMs: 5, maxDelayMs: 5, jitter: false },
      handler: (d) => {
        handled += 1;
        if (d.payload.fail) throw new Error('boom');
      },
    });
    await mq.publish('t', { fail: false });
    await mq.publish('t', { fail: true });
    await until(() => handled >= 3);
    await new Promise((r) => setTimeout(r, 50));
    const { resourceMetrics } = await reader.collect();
    const points: Array<{ name: string; unit: string; attributes: Record<string, unknown>; count: number }> = [];
    for (const scope of resourceMetrics.scopeMetrics) {
      expect(scope.scope.schemaUrl).toBe(`https://opentelemetry.io/schemas/${SEMCONV_VERSION}`);
      for (const metric of scope.metrics) {
        for (const point of metric.dataPoints) {
          const value = point.value as number | { count: number };
          points.push({ name: metric.descriptor.name, unit: metric.descriptor.unit, attributes: point.attributes, count: typeof value === 'number' ? value : value.count });
        }
      }
    }
    const count = (name: string, attrs: Record<string, unknown>): number =>
      points.filter((p) => p.name === name && Object.entries(attrs).every(([k, v]) => p.attributes[k] === v)).reduce((n, p) => n + p.count, 0);
    const op = 'messaging.client.operation.duration';
    expect(points.find((p) => p.name === op)?.unit).toBe('s');
    // Two publishes and the dead letter's own send.
    expect(count('messaging.client.sent.messages', { 'messaging.system': 'memory', 'messaging.operation.name': 'send' })).toBe(3);
    expect(count(op, { 'messaging.operation.name': 'send', 'messaging.destination.name': 't' })).toBe(2);
    expect(count(op, { 'messaging.operation.name': 'send', 'messaging.destination.name': 't-dlq' })).toBe(1);
    expect(count('messaging.client.consumed.messages', { 'messaging.consumer.group.name': 'g' })).toBe(3);
    expect(count('messaging.process.duration', { 'messaging.operation.name': 'process' })).toBe(3);
    expect(count('messaging.process.duration', { 'error.type': 'Error' })).toBe(2);
    expect(count(op, { 'messaging.operation.name': 'ack', 'messaging.operation.type': 'settle' })).toBe(1);
    expect(count(op, { 'messaging.operation.name': 'nack', 'messaging.operation.type': 'settle' })).toBe(1);
    expect(count(op, { 'messaging.operation.name': 'dead_letter', 'messaging.consumer.group.name': 'g' })).toBe(1);
    await mq.close();
  });
});
