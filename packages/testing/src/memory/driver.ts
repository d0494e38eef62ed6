import { z } from 'zod';
import {
  MqError,
  parseUrlOptions,
  type Adapter,
  type Capabilities,
  type Driver,
  type DriverReceiver,
  type DriverTopology,
  type DriverTransaction,
  type Envelope,
  type MissingTopology,
  type SendOutcome,
  type SubscriptionSpec,
} from '@mqkit/core/driver';
import { copy, memoryBroker, type MemoryBroker } from './broker.ts';
import { MemoryReceiver, type MemoryMessage } from './receiver.ts';

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
  readonly #receivers = new Set<MemoryReceiver>();
  #closed = false;

  constructor(broker: MemoryBroker, maxMessageBytes: number) {
    this.#broker = broker;
    this.capabilities = memoryCapabilities(maxMessageBytes);
  }

  /**
   * Topics and groups in the broker: a declared group keeps what is published from then on (and,
   * since the broker retains its log, what came before too). A topic exists once declared or
   * published to, a group once declared or subscribed.
   */
  readonly topology: DriverTopology = {
    capabilities: { partitions: false, retainsForDeclaredGroups: true, createsOnPublish: true },
    declare: async (spec) => {
      this.#broker.declare(spec.topic, spec.groups, spec.ordered);
      if (spec.deadLetterTopic !== undefined) this.#broker.declare(spec.deadLetterTopic, []);
    },
    verify: async (spec) => {
      const missing: MissingTopology[] = [];
      if (!this.#broker.has(spec.topic)) missing.push({ kind: 'topic', name: spec.topic });
      for (const group of spec.groups) if (!this.#broker.has(spec.topic, group)) missing.push({ kind: 'group', name: group, topic: spec.topic });
      if (spec.deadLetterTopic !== undefined && !this.#broker.has(spec.deadLetterTopic)) missing.push({ kind: 'dead-letter topic', name: spec.deadLetterTopic });
      return missing;
    },
  };

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

  async receiver(spec: SubscriptionSpec): Promise<DriverReceiver<MemoryMessage>> {
    if (this.#closed) throw new MqError('CLOSED', 'memory driver is closed');
    const receiver = new MemoryReceiver(this.#broker, spec, () => this.#receivers.delete(receiver));
    this.#receivers.add(receiver);
    return receiver;
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
    await Promise.all([...this.#receivers].map((r) => r.close()));
  }
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
