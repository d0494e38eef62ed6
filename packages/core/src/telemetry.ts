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
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';

/** Where telemetry goes; both default to the global OpenTelemetry providers (no-ops without an SDK). */
export interface TelemetryOptions {
  readonly meterProvider?: MeterProvider | undefined;
  readonly tracerProvider?: TracerProvider | undefined;
}

const SCOPE = '@mqkit/core';

/** Distinct (topic, group) attribute sets kept; beyond it the cache starts again (dynamic topic names). */
const MAX_CACHED_ATTRIBUTES = 1_000;

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
  readonly #tracer: Tracer;
  readonly #system: string;
  /**
   * Attribute sets by topic and group: built once, not per message (metric calls are on the hot
   * path, and the OpenTelemetry SDK copies what it keeps).
   */
  readonly #attributes = new Map<string, Attributes>();
  readonly published: Counter;
  readonly confirmed: Counter;
  readonly failed: Counter;
  readonly acked: Counter;
  readonly retried: Counter;
  readonly deadLettered: Counter;
  readonly deadLetterFailed: Counter;
  readonly handlerDuration: Histogram;

  constructor(system: string, options: TelemetryOptions) {
    this.#system = system;
    // The global provider is a proxy that forwards to an SDK registered later, so one lookup suffices.
    this.#tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE);
    const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
    this.published = meter.createCounter('mqkit.messages.published', { description: 'Messages handed to publish()' });
    this.confirmed = meter.createCounter('mqkit.messages.confirmed', { description: 'Messages the broker durably accepted' });
    this.failed = meter.createCounter('mqkit.messages.failed', { description: 'Publishes that rejected' });
    this.acked = meter.createCounter('mqkit.messages.acked', { description: 'Deliveries acknowledged' });
    this.retried = meter.createCounter('mqkit.messages.retried', { description: 'Deliveries handed back for another attempt' });
    this.deadLettered = meter.createCounter('mqkit.messages.dead_lettered', { description: 'Deliveries dead-lettered' });
    this.deadLetterFailed = meter.createCounter('mqkit.messages.dead_letter_failed', {
      description: 'Dead-letter publishes that failed; the delivery was handed back to be dead-lettered again',
    });
    this.handlerDuration = meter.createHistogram('mqkit.handler.duration', { description: 'Handler run time', unit: 'ms' });
  }

  /** The metric and span attributes of `topic` (and `group`); shared, never mutate them. */
  attributes(topic: string, group?: string): Attributes {
    const id = group === undefined ? topic : `${topic}\u0000${group}`;
    let attrs = this.#attributes.get(id);
    if (attrs === undefined) {
      const built: Attributes = { 'messaging.system': this.#system, 'messaging.destination.name': topic };
      if (group !== undefined) built['messaging.consumer.group.name'] = group;
      attrs = Object.freeze(built);
      if (this.#attributes.size >= MAX_CACHED_ATTRIBUTES) this.#attributes.clear();
      this.#attributes.set(id, attrs);
    }
    return attrs;
  }

  /** Starts a producer span and writes its context into `headers` (W3C `traceparent`). */
  startPublish(topic: string, headers: Record<string, string>): Span {
    const span = this.#tracer.startSpan(`send ${topic}`, {
      kind: SpanKind.PRODUCER,
      attributes: this.attributes(topic),
    });
    // No propagator registered (the API's no-op one has no fields): nothing to write, so skip the
    // context allocation that inject would need.
    if (propagation.fields().length > 0) propagation.inject(trace.setSpan(context.active(), span), headers, headerSetter);
    return span;
  }

  /** The context a delivery continues: the producer's trace, read from its headers. */
  extract(headers: Readonly<Record<string, string>>): Context {
    if (propagation.fields().length === 0) return ROOT_CONTEXT;
    return propagation.extract(ROOT_CONTEXT, headers, headerGetter);
  }

  /**
   * Starts a consumer span, child of the producer's context. `name` and `attributes` come from
   * the subscription (made once: this runs per message).
   */
  startProcess(name: string, attributes: Attributes, parent: Context): Span {
    return this.#tracer.startSpan(name, { kind: SpanKind.CONSUMER, attributes }, parent);
  }

  static endSpan(span: Span, error?: unknown): void {
    if (error !== undefined) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    }
    span.end();
  }
}
