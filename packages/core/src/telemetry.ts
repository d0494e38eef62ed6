import {
  context,
  metrics,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Counter,
  type Histogram,
  type MeterProvider,
  type Span,
  type TracerProvider,
} from '@opentelemetry/api';

/** Where telemetry goes; both default to the global OpenTelemetry providers (no-ops without an SDK). */
export interface TelemetryOptions {
  readonly meterProvider?: MeterProvider | undefined;
  readonly tracerProvider?: TracerProvider | undefined;
}

const SCOPE = '@mqkit/core';

const headerSetter = {
  set(carrier: Record<string, string>, key: string, value: string): void {
    carrier[key] = value;
  },
};
const headerGetter = {
  get(carrier: Readonly<Record<string, string>>, key: string): string | undefined {
    return carrier[key];
  },
  keys(carrier: Readonly<Record<string, string>>): string[] {
    return Object.keys(carrier);
  },
};

/**
 * W3C trace context and OpenTelemetry metrics for one client. Span and metric names follow the
 * OpenTelemetry messaging conventions (`messaging.system`, `messaging.destination.name`).
 */
export class Telemetry {
  readonly #tracerProvider: TelemetryOptions['tracerProvider'];
  readonly #system: string;
  readonly published: Counter;
  readonly confirmed: Counter;
  readonly failed: Counter;
  readonly acked: Counter;
  readonly retried: Counter;
  readonly deadLettered: Counter;
  readonly handlerDuration: Histogram;

  constructor(system: string, options: TelemetryOptions) {
    this.#system = system;
    this.#tracerProvider = options.tracerProvider;
    const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
    this.published = meter.createCounter('mqkit.messages.published', { description: 'Messages handed to publish()' });
    this.confirmed = meter.createCounter('mqkit.messages.confirmed', { description: 'Messages the broker durably accepted' });
    this.failed = meter.createCounter('mqkit.messages.failed', { description: 'Publishes that rejected' });
    this.acked = meter.createCounter('mqkit.messages.acked', { description: 'Deliveries acknowledged' });
    this.retried = meter.createCounter('mqkit.messages.retried', { description: 'Deliveries handed back for another attempt' });
    this.deadLettered = meter.createCounter('mqkit.messages.dead_lettered', { description: 'Deliveries dead-lettered' });
    this.handlerDuration = meter.createHistogram('mqkit.handler.duration', { description: 'Handler run time', unit: 'ms' });
  }

  attributes(topic: string, group?: string): Attributes {
    const attrs: Attributes = { 'messaging.system': this.#system, 'messaging.destination.name': topic };
    if (group !== undefined) attrs['messaging.consumer.group.name'] = group;
    return attrs;
  }

  #tracer() {
    return (this.#tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE);
  }

  /** Starts a producer span and writes its context into `headers` (W3C `traceparent`). */
  startPublish(topic: string, headers: Record<string, string>): Span {
    const span = this.#tracer().startSpan(`send ${topic}`, {
      kind: SpanKind.PRODUCER,
      attributes: this.attributes(topic),
    });
    propagation.inject(trace.setSpan(context.active(), span), headers, headerSetter);
    return span;
  }

  /** The context a delivery continues: the producer's trace, read from its headers. */
  extract(headers: Readonly<Record<string, string>>): Context {
    return propagation.extract(ROOT_CONTEXT, headers, headerGetter);
  }

  /** Starts a consumer span, child of the producer's context. */
  startProcess(topic: string, group: string, parent: Context): Span {
    return this.#tracer().startSpan(
      `process ${topic}`,
      { kind: SpanKind.CONSUMER, attributes: this.attributes(topic, group) },
      parent,
    );
  }

  static endSpan(span: Span, error?: unknown): void {
    if (error !== undefined) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    }
    span.end();
  }
}
