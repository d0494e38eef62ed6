/**
 * OpenTelemetry traces and metrics of one client, named per the OpenTelemetry semantic
 * conventions for messaging, version {@link SEMCONV_VERSION} (status "development"):
 *
 * - spans `send {topic}` (PRODUCER; one per publish, its context is the message's creation
 *   context), `create {topic}` (PRODUCER; one per message of a batch) under `send {topic}`
 *   (CLIENT, linked to them, `messaging.batch.message_count`), `process {topic}` (CONSUMER, the
 *   handler's span: child of the creation context and linked to it), `ack|nack|dead_letter {topic}`
 *   (CLIENT, `messaging.operation.type` settle);
 * - metrics `messaging.client.operation.duration` (send and settles), `messaging.process.duration`,
 *   `messaging.client.sent.messages`, `messaging.client.consumed.messages`.
 *
 * The broker client's own spans (kafkajs, amqplib, AWS SDK instrumentations) are suppressed under
 * mqkit's: every driver call runs in {@link untraced}.
 */
import {
  context,
  createNoopMeter,
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
  type Link,
  type MeterProvider,
  type Span,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import { MqError } from './errors.ts';
import { SendHealth } from './health.ts';
import type { Envelope } from './message.ts';

/** Where telemetry goes; both default to the global OpenTelemetry providers (no-ops without an SDK). */
export interface TelemetryOptions {
  readonly meterProvider?: MeterProvider | undefined;
  readonly tracerProvider?: TracerProvider | undefined;
  /** `messaging.system` of sends when it is not the adapter's ({@link Driver.sendSystem}). */
  readonly sendSystem?: string | undefined;
}

/** The version of the OpenTelemetry semantic conventions mqkit's spans and metrics follow. */
export const SEMCONV_VERSION = '1.45.0';
/** @internal the schema URL of {@link SEMCONV_VERSION}, on mqkit's tracer and meters. */
export const SCHEMA_URL = `https://opentelemetry.io/schemas/${SEMCONV_VERSION}`;
const SCOPE = '@mqkit/core';

/** `messaging.system` by adapter name: the conventions' well-known values where there is one. */
const SYSTEMS: Readonly<Record<string, string>> = { sqs: 'aws_sqs', 'redis-streams': 'redis' };

/** @internal `messaging.system` of an adapter (by its name). */
export function messagingSystem(adapter: string): string {
  return SYSTEMS[adapter] ?? adapter;
}

/** Bucket boundaries (s) the conventions advise for messaging durations. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** Distinct topics whose attribute sets are kept; beyond it the cache starts again (dynamic topic names). */
const MAX_CACHED_TOPICS = 1_000;
/** Distinct `error.type` values kept per operation (error names are few; this bounds a pathological set). */
const MAX_CACHED_ERRORS = 64;

/** A context in which OpenTelemetry SDK tracers record nothing: the broker client's own spans. */
const UNTRACED = suppressTracing(ROOT_CONTEXT);

/** The metrics SDK is absent when a histogram is the API's shared no-op one: nothing to time then. */
const NOOP_HISTOGRAM = createNoopMeter().createHistogram('noop');

/**
 * Calls `fn` with tracing suppressed, so that instrumentations of the broker client (kafkajs,
 * amqplib, AWS SDK, …) add no spans of their own under mqkit's, and inject no trace context over
 * the one mqkit put in the headers. Every driver call goes through this.
 */
export function untraced<A extends unknown[], R>(fn: (...args: A) => R, thisArg: unknown, ...args: A): R {
  return context.with(UNTRACED, fn, thisArg, ...args);
}

/**
 * The method under an OpenTelemetry contrib instrumentation's wrapper (they wrap with shimmer,
 * which keeps the original as `__original`), else `fn` itself. For the few client-library calls
 * whose instrumentation parents its spans on the message's own trace context rather than the
 * active one (amqplib's consume callback, kafkajs' consumer run): {@link untraced} does not
 * reach those, so an adapter calls past the wrapper, e.g.
 * `uninstrumented(channel.consume).call(channel, queue, onMessage, options)`.
 */
export function uninstrumented<F extends (...args: never[]) => unknown>(fn: F): F {
  const original = (fn as F & { __original?: unknown }).__original;
  return typeof original === 'function' ? (original as F) : fn;
}

/** The conventions' `error.type`: an {@link MqError}'s code, else the error's name. */
export function errorType(error: unknown): string {
  if (MqError.is(error)) return error.code;
  if (error instanceof Error) return error.name || 'Error';
  return '_OTHER';
}

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
 * One operation on one destination: its span name and attribute sets, made once (spans and
 * metric points are per message; the SDK copies what it keeps). Never mutate the attributes.
 */
export class Operation {
  /** `messaging.operation.name`. */
  readonly name: string;
  /** `{messaging.operation.name} {destination}`. */
  readonly spanName: string;
  readonly attributes: Attributes;
  #errors: Map<string, Attributes> | undefined;

  constructor(system: string, name: string, type: string, topic: string | undefined, group?: string) {
    this.name = name;
    this.spanName = topic === undefined ? name : `${name} ${topic}`;
    const attrs: Attributes = { 'messaging.system': system, 'messaging.operation.name': name, 'messaging.operation.type': type };
    if (topic !== undefined) attrs['messaging.destination.name'] = topic;
    if (group !== undefined) attrs['messaging.consumer.group.name'] = group;
    this.attributes = Object.freeze(attrs);
  }

  /** The attributes with `error.type`. */
  failed(type: string): Attributes {
    this.#errors ??= new Map();
    let attrs = this.#errors.get(type);
    if (attrs === undefined) {
      attrs = Object.freeze({ ...this.attributes, 'error.type': type });
      if (this.#errors.size >= MAX_CACHED_ERRORS) this.#errors.clear();
      this.#errors.set(type, attrs);
    }
    return attrs;
  }
}

/** The operations of one subscription. */
export interface ConsumerOperations {
  readonly process: Operation;
  readonly ack: Operation;
  readonly nack: Operation;
  readonly dead: Operation;
}

/** The producer operations of one topic. */
interface Destination {
  readonly send: Operation;
  readonly create: Operation;
}

/** W3C trace context and OpenTelemetry metrics for one client (see the module comment). */
export class Telemetry {
  readonly #tracer: Tracer;
  /** `messaging.system` of receives, processing and settles. */
  readonly system: string;
  /** `messaging.system` of sends (another system for SQS with SNS). */
  readonly sendSystem: string;
  readonly #destinations = new Map<string, Destination>();
  /** `messaging.client.operation.duration` (s): send, ack, nack, dead_letter. */
  readonly operationDuration: Histogram;
  /** `messaging.process.duration` (s): handler runs. */
  readonly processDuration: Histogram;
  /** `messaging.client.sent.messages`: messages the broker accepted, or failed (with `error.type`). */
  readonly sent: Counter;
  /** `messaging.client.consumed.messages`: deliveries handed to a handler. */
  readonly consumed: Counter;
  /** A metrics SDK is there: durations are worth timing. */
  readonly metered: boolean;
  /** The publisher's failure streak, for {@link Client.health}. */
  readonly sendHealth = new SendHealth();

  constructor(adapter: string, options: TelemetryOptions) {
    this.system = messagingSystem(adapter);
    this.sendSystem = options.sendSystem ?? this.system;
    // The global provider is a proxy that forwards to an SDK registered later, so one lookup suffices.
    this.#tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE, undefined, { schemaUrl: SCHEMA_URL });
    const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE, undefined, { schemaUrl: SCHEMA_URL });
    const advice = { explicitBucketBoundaries: DURATION_BUCKETS };
    this.operationDuration = meter.createHistogram('messaging.client.operation.duration', {
      description: 'Duration of a messaging operation initiated by the client (send: publish to broker confirm; ack, nack, dead_letter: settle)',
      unit: 's',
      advice,
    });
    this.processDuration = meter.createHistogram('messaging.process.duration', { description: 'Duration of processing operation (the handler)', unit: 's', advice });
    this.sent = meter.createCounter('messaging.client.sent.messages', { description: 'Number of messages the producer attempted to send to the broker', unit: '{message}' });
    this.consumed = meter.createCounter('messaging.client.consumed.messages', { description: 'Number of messages delivered to the application', unit: '{message}' });
    this.metered = this.operationDuration !== NOOP_HISTOGRAM;
  }

  #destination(topic: string): Destination {
    let d = this.#destinations.get(topic);
    if (d === undefined) {
      d = { send: new Operation(this.sendSystem, 'send', 'send', topic), create: new Operation(this.sendSystem, 'create', 'create', topic) };
      if (this.#destinations.size >= MAX_CACHED_TOPICS) this.#destinations.clear();
      this.#destinations.set(topic, d);
    }
    return d;
  }

  /** The operations of a subscription to `topic` as `group` (made once per subscription). */
  consumer(topic: string, group: string): ConsumerOperations {
    const op = (name: string, type: string): Operation => new Operation(this.system, name, type, topic, group);
    return { process: op('process', 'process'), ack: op('ack', 'settle'), nack: op('nack', 'settle'), dead: op('dead_letter', 'settle') };
  }

  /** A timestamp for {@link Telemetry.sentOne} (0 when nothing is timed). */
  now(): number {
    return this.metered ? performance.now() : 0;
  }

  /**
   * Starts the `send {topic}` span of one message (PRODUCER) and writes its context into
   * `headers` as the message's creation context, unless the headers carry one already (a
   * forwarded or replayed message keeps its own; the span links to it).
   */
  startSend(topic: string, id: string, headers: Record<string, string>): Span {
    const op = this.#destination(topic).send;
    const span = this.#tracer.startSpan(op.spanName, { kind: SpanKind.PRODUCER, attributes: op.attributes });
    if (span.isRecording()) span.setAttribute('messaging.message.id', id);
    // Also for a span nothing records: with a propagator but no SDK (or a sampled-out span), the
    // non-recording span carries the caller's context, and the message must continue that trace.
    this.#attachCreationContext(span, headers);
    return span;
  }

  /** Injects `span`'s context into `headers`, or links `span` to the creation context already there. */
  #attachCreationContext(span: Span, headers: Record<string, string>): void {
    const fields = propagation.fields();
    // No propagator registered: nothing to write, and no context to allocate.
    if (fields.length === 0) return;
    if (headers[fields[0]!] !== undefined) {
      const existing = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, headers, headerGetter));
      if (existing) span.addLink({ context: existing });
      return;
    }
    propagation.inject(trace.setSpan(context.active(), span), headers, headerSetter);
  }

  /**
   * A `create {topic}` span (PRODUCER, ended at once) per envelope, injected into its headers
   * (fresh ones: the caller owns them), and the links a batch's send span makes to them.
   */
  #create(envelopes: readonly Envelope[]): Link[] {
    const links: Link[] = [];
    for (const envelope of envelopes) {
      const op = this.#destination(envelope.topic).create;
      const span = this.#tracer.startSpan(op.spanName, { kind: SpanKind.PRODUCER, attributes: op.attributes });
      span.setAttribute('messaging.message.id', envelope.id);
      this.#attachCreationContext(span, envelope.headers);
      links.push({ context: span.spanContext() });
      span.end();
    }
    return links;
  }

  /**
   * The creation context of a message stored for later (outbox, transaction): a `create {topic}`
   * span written into `headers`.
   */
  createOne(topic: string, id: string, headers: Record<string, string>): void {
    const op = this.#destination(topic).create;
    const span = this.#tracer.startSpan(op.spanName, { kind: SpanKind.PRODUCER, attributes: op.attributes });
    if (span.isRecording()) span.setAttribute('messaging.message.id', id);
    this.#attachCreationContext(span, headers);
    span.end();
  }

  /**
   * The span of a batch send (CLIENT): `create` spans for new messages (`fresh`; their headers
   * are written) or links to the creation contexts the envelopes carry (outbox records).
   * Undefined when nothing records: the caller then traces each message as a single send.
   */
  startBatch(envelopes: readonly Envelope[], fresh: boolean): Span | undefined {
    const topic = envelopes.length > 0 && envelopes.every((e) => e.topic === envelopes[0]!.topic) ? envelopes[0]!.topic : undefined;
    const op = topic === undefined ? new Operation(this.sendSystem, 'send', 'send', undefined) : this.#destination(topic).send;
    const span = this.#tracer.startSpan(op.spanName, { kind: SpanKind.CLIENT, attributes: op.attributes });
    if (!span.isRecording()) return undefined;
    span.setAttribute('messaging.batch.message_count', envelopes.length);
    if (envelopes.length === 1) span.setAttribute('messaging.message.id', envelopes[0]!.id);
    const links = fresh ? this.#create(envelopes) : this.#carriedContexts(envelopes);
    span.addLinks(links);
    return span;
  }

  #carriedContexts(envelopes: readonly Envelope[]): Link[] {
    const links: Link[] = [];
    if (propagation.fields().length === 0) return links;
    for (const envelope of envelopes) {
      const carried = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, envelope.headers, headerGetter));
      if (carried) links.push({ context: carried });
    }
    return links;
  }

  /** Ends a batch span: `error.type` of the first failure when any message failed. */
  static endBatch(span: Span, outcomes: ReadonlyArray<{ ok: boolean; error?: MqError }>): void {
    const failed = outcomes.find((o) => !o.ok);
    Telemetry.endSpan(span, failed?.error);
  }

  /** Books one message's send outcome: `sent` counter and send duration (from {@link Telemetry.now}). */
  sentOne(topic: string, started: number, error: MqError | undefined): void {
    if (error === undefined) this.sendHealth.noteOk();
    else this.sendHealth.noteFailure(error);
    // Without a metrics SDK the instruments are no-ops: skip the lookup too.
    if (!this.metered) return;
    const op = this.#destination(topic).send;
    const attrs = error === undefined ? op.attributes : op.failed(error.code);
    this.sent.add(1, attrs);
    this.operationDuration.record((performance.now() - started) / 1000, attrs);
  }

  /** The context a delivery continues: the producer's creation context, read from its headers. */
  extract(headers: Readonly<Record<string, string>>): Context {
    if (propagation.fields().length === 0) return ROOT_CONTEXT;
    return propagation.extract(ROOT_CONTEXT, headers, headerGetter);
  }

  /**
   * Starts a `process {topic}` span (CONSUMER): child of the message's creation context `parent`
   * (the conventions allow it for single messages) and linked to it, as they require.
   */
  startProcess(op: Operation, parent: Context, id: string): Span {
    const span = this.#tracer.startSpan(op.spanName, { kind: SpanKind.CONSUMER, attributes: op.attributes }, parent);
    if (span.isRecording()) {
      span.setAttribute('messaging.message.id', id);
      const creation = trace.getSpanContext(parent);
      if (creation) span.addLink({ context: creation });
    }
    return span;
  }

  /** Books a handler run: `messaging.process.duration` (with `error.type` when it failed). */
  processed(op: Operation, started: number, error: unknown): void {
    if (!this.metered) return;
    this.processDuration.record((performance.now() - started) / 1000, error === undefined ? op.attributes : op.failed(errorType(error)));
  }

  /**
   * Runs a settle (`fn`) under its span (`ack|nack|dead_letter {topic}`, CLIENT, child of the
   * process span's context `parent` when that records) and times it. The driver calls inside
   * run untraced. Called only when something records or is metered.
   */
  settle<A extends unknown[]>(op: Operation, parent: Context | undefined, id: string, fn: (...args: A) => Promise<void>, thisArg: unknown, ...args: A): Promise<void> {
    const started = this.metered ? performance.now() : 0;
    let span: Span | undefined;
    let running: Promise<void>;
    if (parent === undefined) running = fn.apply(thisArg, args);
    else {
      span = this.#tracer.startSpan(op.spanName, { kind: SpanKind.CLIENT, attributes: op.attributes }, parent);
      span.setAttribute('messaging.message.id', id);
      running = context.with(suppressTracing(trace.setSpan(parent, span)), fn, thisArg, ...args);
    }
    return running.then(
      () => this.#settled(op, started, span, undefined),
      (err: unknown) => {
        this.#settled(op, started, span, err);
        throw err;
      },
    );
  }

  #settled(op: Operation, started: number, span: Span | undefined, error: unknown): void {
    if (this.metered) this.operationDuration.record((performance.now() - started) / 1000, error === undefined ? op.attributes : op.failed(errorType(error)));
    if (span) Telemetry.endSpan(span, error);
  }

  /** Ends `span`; a failure sets `error.type`, the error status and the exception event. */
  static endSpan(span: Span, error?: unknown): void {
    if (error !== undefined && span.isRecording()) {
      const type = errorType(error);
      const message = error instanceof Error ? error.message : typeof error === 'string' ? error : type;
      span.setAttribute('error.type', type);
      span.recordException(error instanceof Error ? error : message);
      span.setStatus({ code: SpanStatusCode.ERROR, message });
    }
    span.end();
  }
}
