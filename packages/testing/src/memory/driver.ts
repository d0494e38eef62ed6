import { z } from 'zod';
import {
  MqError,
  parseUrlOptions,
  type Adapter,
  type Capabilities,
  type DeliverySink,
  type Driver,
  type DriverDelivery,
  type DriverSubscription,
  type DriverTransaction,
  type Envelope,
  type SendOutcome,
  type SubscriptionSpec,
} from '@mqkit/core/driver';
import { memoryBroker, type MemoryBroker, type MemoryConsumer } from './broker.ts';

const DEFAULT_MAX_BYTES = 1024 * 1024;

const optionsSchema = z
  .object({
    /** Largest message in bytes. @default 1 MiB */
    maxMessageBytes: z.coerce.number().int().positive().default(DEFAULT_MAX_BYTES),
  })
  .strict();

/** Options of the memory adapter (URL query parameters or `connect(url, { options })`). */
export type MemoryOptions = z.input<typeof optionsSchema>;

const DAY_MS = 24 * 3600_000;

/** What the memory adapter can do, for a given message size limit. */
export function memoryCapabilities(maxMessageBytes = DEFAULT_MAX_BYTES): Capabilities {
  return {
    delay: { kind: 'native', maxMs: DAY_MS, precisionMs: 20 },
    ordering: 'key',
    transactions: true,
    maxMessageBytes,
    maxBatchSize: 1000,
    deliveryCount: 'native',
    topicPattern: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,248}$/,
    maxHeaders: Number.POSITIVE_INFINITY,
  };
}

/** The in-memory driver: a faithful at-least-once broker in this process. */
export class MemoryDriver implements Driver {
  readonly name = 'memory';
  readonly capabilities: Capabilities;
  readonly #broker: MemoryBroker;
  readonly #subscriptions = new Set<DriverSubscription>();
  #closed = false;

  constructor(broker: MemoryBroker, maxMessageBytes: number) {
    this.#broker = broker;
    this.capabilities = memoryCapabilities(maxMessageBytes);
  }

  /** The {@link MemoryBroker} itself. */
  get native(): MemoryBroker {
    return this.#broker;
  }

  async send(envelopes: readonly Envelope[]): Promise<SendOutcome[]> {
    if (this.#closed) throw new MqError('CLOSED', 'memory driver is closed');
    return envelopes.map((envelope) => {
      const injected = this.#broker.takeSendFailure();
      if (injected) return { ok: false, error: injected };
      return { ok: true, receipt: this.#broker.publish(copy(envelope)) };
    });
  }

  async subscribe(spec: SubscriptionSpec, sink: DeliverySink): Promise<DriverSubscription> {
    if (this.#closed) throw new MqError('CLOSED', 'memory driver is closed');
    let open = true;
    const consumer: MemoryConsumer = {
      maxInFlight: spec.maxInFlight,
      held: 0,
      paused: false,
      onMessage: ({ envelope, attempt, seq }) => {
        const settle = (action: () => boolean): Promise<void> => {
          if (!open) return Promise.reject(new MqError('CLOSED', 'subscription is closed; the message will be redelivered'));
          if (!action()) return Promise.reject(new MqError('INVALID_MESSAGE', 'message is no longer held by this consumer'));
          return Promise.resolve();
        };
        const delivery: DriverDelivery = {
          envelope: copy(envelope),
          attempt,
          meta: { seq: String(seq) },
          ack: () => settle(() => group.ack(seq)),
          nack: (delayMs) => settle(() => group.nack(seq, delayMs)),
        };
        sink.deliver(delivery);
      },
    };
    const group = this.#broker.attach(spec.topic, spec.group, consumer, spec.ordered);
    const subscription: DriverSubscription = {
      pause: () => {
        consumer.paused = true;
      },
      resume: () => {
        consumer.paused = false;
        group.wake();
      },
      close: async () => {
        if (!open) return;
        open = false;
        group.detach();
        this.#subscriptions.delete(subscription);
      },
    };
    this.#subscriptions.add(subscription);
    return subscription;
  }

  async beginTransaction(): Promise<DriverTransaction> {
    const staged: Envelope[] = [];
    let done = false;
    const finish = (): void => {
      if (done) throw new MqError('INVALID_MESSAGE', 'transaction already finished');
      done = true;
    };
    return {
      send: async (envelopes) => {
        if (done) throw new MqError('INVALID_MESSAGE', 'transaction already finished');
        staged.push(...envelopes.map(copy));
      },
      commit: async () => {
        finish();
        for (const envelope of staged) this.#broker.publish(envelope);
      },
      abort: async () => {
        finish();
      },
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#subscriptions].map((s) => s.close()));
  }
}

/** Deep enough copy that a consumer cannot change what the broker stores, or the reverse. */
function copy(envelope: Envelope): Envelope {
  return { ...envelope, headers: { ...envelope.headers }, body: new Uint8Array(envelope.body) };
}

/**
 * The `memory://` adapter. `memory://` is one process-wide broker; `memory://name` another, so
 * tests can isolate themselves. Option: `maxMessageBytes`.
 */
export function memory(): Adapter {
  return {
    schemes: ['memory'],
    async create(url, options) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch (err) {
        throw new MqError('CONFIG', 'invalid memory:// URL', { cause: err });
      }
      const { maxMessageBytes } = parseUrlOptions(optionsSchema, parsed, options);
      return new MemoryDriver(memoryBroker(parsed.hostname), maxMessageBytes);
    },
  };
}

/** Alias of {@link memory}, the name `connect()` looks for when it loads this package by scheme. */
export const adapter = memory;
