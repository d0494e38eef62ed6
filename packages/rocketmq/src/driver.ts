/**
 * The RocketMQ 5 driver: reliable send through the gRPC proxy (a send resolves with the broker's
 * receipt, one gRPC call per message so concurrent sends are never serialised), half-message
 * transactions with an application check-back, and one SimpleConsumer per subscription behind
 * core's pull contract (receiver.ts).
 */
import {
  MqError,
  type Capabilities,
  type Driver,
  type DriverContext,
  type DriverTopology,
  type DriverTransaction,
  type Envelope,
  type Logger,
  type SendOutcome,
  type SubscriptionSpec,
  withDeadline,
} from '@mqkit/core/driver';
import { Producer, type SessionCredentials } from 'rocketmq-client-nodejs';
import { RocketmqAdmin } from './admin.ts';
import { classify } from './classify.ts';
import { clientLogger } from './client-logger.ts';
import { acquireRejectionGuard } from './rejection-guard.ts';
import { toMessageOptions } from './message-codec.ts';
import { parseSubscribeOptions, type RocketmqConfig } from './options.ts';
import { RocketmqReceiver } from './receiver.ts';
import { DEFAULT_GROUP_RETRIES, groupRetriesFor } from './retry-limit.ts';
import { TopicTypes, type TopicType } from './topic-types.ts';
import { nativeChecker } from './transaction-checker.ts';
import { explainMissingTopic, rocketmqTopology } from './topology.ts';

/** Largest delay: the client refuses delivery timestamps more than a day ahead. */
const MAX_DELAY_MS = 24 * 3600_000;

/**
 * Largest message (body + headers) a consumer can still receive. The proxy accepts bodies up to
 * 4 MiB, but measured against 5.3.3 with rocketmq-client-nodejs 1.0.8, a 3.5 MiB body (and 4 MiB -
 * 1 KiB) was accepted and then never delivered: every receive carrying it failed with "13 INTERNAL:
 * Received RST_STREAM with code 2 ... Session closed", while 3 MiB arrived.
 */
const MAX_MESSAGE_BYTES = 3 * 1024 * 1024;

/** What the RocketMQ adapter can do. */
export const ROCKETMQ_CAPABILITIES: Capabilities = {
  // Delivery timestamps on DELAY topics; nack delays via the invisible duration. The broker's
  // timer wheel ticks once a second (timerPrecisionMs).
  delay: { kind: 'native', maxMs: MAX_DELAY_MS, precisionMs: 1500 },
  ordering: 'key',
  transactions: true,
  // What a consumer can still receive, not what the proxy stores (its maxMessageSize, 4 MiB).
  maxMessageBytes: MAX_MESSAGE_BYTES,
  // The client sends one message per gRPC call. With batches, core would resolve a batch's
  // publishes only when its slowest send returned (lockstep); single-message calls let each publish
  // resolve, and the next one start, as soon as its own receipt arrives.
  maxBatchSize: 1,
  deliveryCount: 'native',
  topicPattern: /^[A-Za-z0-9_-]{1,127}$/,
  maxHeaders: Number.POSITIVE_INFINITY,
};

/** The native objects behind a RocketMQ client ({@link RocketmqDriver.native}). */
export interface RocketmqNative {
  /** The producer used for ordinary sends. */
  readonly producer: Producer;
  /** The declare step (typed topics, orderly groups), when `namesrv` is configured. */
  readonly admin: RocketmqAdmin | undefined;
  /** Resolved configuration without secrets. */
  readonly endpoints: string;
  readonly namespace: string;
}

/** One mqkit client's connection to RocketMQ. */
export class RocketmqDriver implements Driver {
  readonly name = 'rocketmq';
  readonly capabilities = ROCKETMQ_CAPABILITIES;
  /** Typed topics and groups through the name server (`namesrv`); see topology.ts. */
  readonly topology: DriverTopology;
  readonly #config: RocketmqConfig;
  readonly #logger: Logger;
  readonly #producer: Producer;
  readonly #types: TopicTypes;
  readonly #admin: RocketmqAdmin | undefined;
  readonly #receivers = new Set<RocketmqReceiver>();
  readonly #releaseGuard: () => void;
  #txProducer: Promise<{ producer: Producer; types: TopicTypes }> | undefined;
  #closed = false;

  private constructor(config: RocketmqConfig, context: DriverContext) {
    this.#config = config;
    this.#logger = context.logger;
    this.#releaseGuard = acquireRejectionGuard(context.logger);
    // maxAttempts 1: the client's own retries would hide failures from core's reliable sender.
    this.#producer = new Producer({ ...this.#clientOptions(), maxAttempts: 1 });
    this.#types = new TopicTypes(this.#producer);
    this.#admin = config.namesrv ? new RocketmqAdmin({ namesrv: config.namesrv, timeoutMs: config.requestTimeoutMs }) : undefined;
    this.topology = rocketmqTopology({ admin: this.#admin, topicType: (topic) => this.#types.get(topic), forget: (topic) => this.#types.forget(topic) });
  }

  /** Connects: starts the producer (and the transactional one when transaction topics are declared). */
  static async connect(config: RocketmqConfig, context: DriverContext): Promise<RocketmqDriver> {
    const driver = new RocketmqDriver(config, context);
    try {
      await withDeadline(driver.#producer.startup(), config.startupTimeoutMs, 'rocketmq: producer startup');
      if (config.transactionTopics.length > 0) await driver.#transactionalProducer();
    } catch (err) {
      await driver.close().catch(() => {});
      throw classify(err, { during: 'connect' });
    }
    return driver;
  }

  /** Options shared by every client this driver makes (secrets stay inside the client). */
  #clientOptions(): { endpoints: string; namespace: string; sslEnabled: boolean; requestTimeout: number; logger: ReturnType<typeof clientLogger>; sessionCredentials?: SessionCredentials } {
    const { accessKey, secretKey, securityToken } = this.#config;
    const credentials: SessionCredentials | undefined =
      accessKey && secretKey ? { accessKey, accessSecret: secretKey, ...(securityToken ? { securityToken } : {}) } : undefined;
    return {
      endpoints: this.#config.endpoints,
      namespace: this.#config.namespace,
      sslEnabled: this.#config.tls,
      requestTimeout: this.#config.requestTimeoutMs,
      logger: clientLogger(this.#logger),
      ...(credentials ? { sessionCredentials: credentials } : {}),
    };
  }

  get native(): RocketmqNative {
    return { producer: this.#producer, admin: this.#admin, endpoints: this.#config.endpoints, namespace: this.#config.namespace };
  }

  /** The type of `topic` as the broker declares it (cached). */
  topicType(topic: string): Promise<TopicType> {
    return this.#types.get(topic);
  }

  async send(envelopes: readonly Envelope[]): Promise<SendOutcome[]> {
    if (this.#closed) throw new MqError('CLOSED', 'rocketmq driver is closed');
    return Promise.all(envelopes.map((envelope) => this.#sendOne(envelope)));
  }

  async #sendOne(envelope: Envelope): Promise<SendOutcome> {
    const context = { topic: envelope.topic, id: envelope.id };
    try {
      const type = this.#types.known(envelope.topic) ?? (await this.#types.get(envelope.topic));
      if (type === 'TRANSACTION') {
        // A TRANSACTION topic takes only half messages: a plain publish is a transaction of one.
        const receipt = await this.#sendCommitted(envelope);
        return { ok: true, receipt };
      }
      checkFits(envelope, type);
      const receipt = await this.#producer.send(toMessageOptions(envelope, type));
      return { ok: true, receipt: receipt.messageId };
    } catch (err) {
      const error = classify(err, context);
      if (error.code === 'REJECTED' && /type not match/i.test(error.message)) this.#types.forget(envelope.topic);
      return { ok: false, error: explainMissingTopic(error, envelope.topic, undefined, this.#admin !== undefined) };
    }
  }

  async #sendCommitted(envelope: Envelope): Promise<string> {
    const tx = await this.beginTransaction();
    const [receipt] = await tx.sendWithReceipts([envelope]).catch(async (err: unknown) => {
      await tx.abort().catch(() => {});
      throw err;
    });
    await tx.commit();
    return receipt ?? '';
  }

  async receiver(spec: SubscriptionSpec): Promise<RocketmqReceiver> {
    if (this.#closed) throw new MqError('CLOSED', 'rocketmq driver is closed');
    const type = await this.#types.get(spec.topic).catch((err: unknown) => {
      throw explainMissingTopic(classify(err, { topic: spec.topic, group: spec.group }), spec.topic, spec.group, this.#admin !== undefined);
    });
    const options = parseSubscribeOptions(spec.options);
    const orderly = spec.ordered && type === 'FIFO';
    // The broker's own dead-lettering (after the group's retryMaxTimes) must come after core's.
    const known = options.groupRetryMaxTimes ?? DEFAULT_GROUP_RETRIES;
    const retries = Math.max(known, groupRetriesFor(spec.maxAttempts));
    const declare = this.#config.declareGroups && this.#admin !== undefined;
    if (retries > known && !declare) {
      throw new MqError(
        'CONFIG',
        `rocketmq: retry.maxAttempts ${spec.maxAttempts} needs consumer group "${spec.group}" to allow ${retries} redeliveries, but it allows ${known} (retryMaxTimes) and the broker would dead-letter first: set namesrv so the adapter declares the group, or create it with retryMaxTimes >= ${retries} and pass options.groupRetryMaxTimes`,
        { details: { topic: spec.topic, group: spec.group, maxAttempts: spec.maxAttempts, retryMaxTimes: known } },
      );
    }
    if (declare && (orderly || retries > known)) {
      // Per-group order needs an orderly group (auto-created groups are not); a long retry policy
      // needs more redeliveries than the group's default.
      await this.#admin.createGroup(spec.group, { orderly, retryMaxTimes: retries }).catch((err: unknown) => {
        throw classify(err, { topic: spec.topic, group: spec.group });
      });
    }
    if (spec.ordered && type !== 'FIFO') {
      this.#logger.warn({ topic: spec.topic, group: spec.group, type }, 'ordered subscription on a non-FIFO topic: the broker keeps no per-key order; use a FIFO topic');
    } else if (spec.ordered && !declare) {
      this.#logger.warn({ topic: spec.topic, group: spec.group }, 'ordered subscription: make sure the consumer group is orderly (rocketmq-group NAME:FIFO), or set namesrv so the adapter declares it');
    }
    const receiver = await RocketmqReceiver.start({
      spec,
      fifo: type === 'FIFO',
      config: this.#config,
      clientOptions: this.#clientOptions(),
      onClosed: (r) => this.#receivers.delete(r),
    });
    this.#receivers.add(receiver);
    return receiver;
  }

  async beginTransaction(): Promise<RocketmqTransaction> {
    if (this.#closed) throw new MqError('CLOSED', 'rocketmq driver is closed');
    const { producer, types } = await this.#transactionalProducer();
    return new RocketmqTransaction(producer, types);
  }

  /** The producer that owns half messages and answers check-backs, started once. */
  #transactionalProducer(): Promise<{ producer: Producer; types: TopicTypes }> {
    this.#txProducer ??= (async () => {
      const producer = new Producer({
        ...this.#clientOptions(),
        maxAttempts: 1,
        // Declared topics go into the producer's settings: the broker's check-back reaches only
        // producers that publish the topic.
        topics: [...this.#config.transactionTopics],
        checker: nativeChecker(this.#config.transactionChecker, (err) => this.#logger.warn({ err }, 'rocketmq transaction checker failed; the broker will ask again')),
      });
      await withDeadline(producer.startup(), this.#config.startupTimeoutMs, 'rocketmq: transactional producer startup');
      return { producer, types: new TopicTypes(producer, () => syncSettings(producer)) };
    })();
    this.#txProducer.catch(() => {
      this.#txProducer = undefined;
    });
    return this.#txProducer;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#receivers].map((r) => r.close()));
    const shutdowns: Array<Promise<unknown>> = [shutdownQuietly(this.#producer)];
    const tx = this.#txProducer;
    if (tx) shutdowns.push(tx.then(({ producer }) => shutdownQuietly(producer), () => undefined));
    await Promise.allSettled(shutdowns);
    this.#releaseGuard();
  }
}

/**
 * A native transaction: each staged message is one half message (the client allows one per
 * RocketMQ transaction), all committed or rolled back together. If the process dies between the
 * commits, the broker's check-back asks the application's checker about the rest, so a checker
 * answering from the local state makes the group all-or-nothing.
 */
export class RocketmqTransaction implements DriverTransaction {
  readonly #producer: Producer;
  readonly #types: TopicTypes;
  readonly #staged: Array<{ commit(): Promise<void>; rollback(): Promise<void> }> = [];
  #done = false;

  constructor(producer: Producer, types: TopicTypes) {
    this.#producer = producer;
    this.#types = types;
  }

  async send(envelopes: readonly Envelope[]): Promise<void> {
    await this.sendWithReceipts(envelopes);
  }

  /** Sends the half messages; resolves with the broker's message ids. */
  async sendWithReceipts(envelopes: readonly Envelope[]): Promise<string[]> {
    if (this.#done) throw new MqError('CLOSED', 'transaction already ended');
    return Promise.all(
      envelopes.map(async (envelope) => {
        const context = { topic: envelope.topic, id: envelope.id };
        try {
          const type = await this.#types.get(envelope.topic);
          if (type !== 'TRANSACTION') {
            throw new MqError('UNSUPPORTED', `rocketmq: topic "${envelope.topic}" is a ${type} topic; transactional messages need a TRANSACTION topic`, { details: context });
          }
          if (envelope.delayMs !== undefined && envelope.delayMs > 0) {
            throw new MqError('UNSUPPORTED', 'rocketmq: a transactional message cannot be delayed', { details: context });
          }
          const native = this.#producer.beginTransaction();
          const receipt = await this.#producer.send(toMessageOptions(envelope, 'TRANSACTION'), native);
          this.#staged.push(native);
          return receipt.messageId;
        } catch (err) {
          throw classify(err, context);
        }
      }),
    );
  }

  async commit(): Promise<void> {
    this.#end();
    for (const native of this.#staged) {
      try {
        await native.commit();
      } catch (err) {
        // The half message stays pending; the checker will be asked and should say "commit".
        throw classify(err, { during: 'commit' });
      }
    }
  }

  async abort(): Promise<void> {
    this.#end();
    const results = await Promise.allSettled(this.#staged.map((native) => native.rollback()));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw classify(failed.reason, { during: 'rollback' });
  }

  #end(): void {
    if (this.#done) throw new MqError('CLOSED', 'transaction already ended');
    this.#done = true;
  }
}

/** Delay and type constraints the broker would refuse with a less helpful message. */
function checkFits(envelope: Envelope, type: TopicType): void {
  const delayed = envelope.delayMs !== undefined && envelope.delayMs > 0;
  if (delayed && type !== 'DELAY') {
    throw new MqError('UNSUPPORTED', `rocketmq: topic "${envelope.topic}" is a ${type} topic; delayed messages need a DELAY topic`, {
      details: { topic: envelope.topic, id: envelope.id },
    });
  }
}

/** Pushes the producer's current topic list to the proxy (normally done every 5 minutes). */
function syncSettings(producer: Producer): void {
  const access = producer as unknown as { getTotalRouteEndpoints(): unknown[]; telemetry(endpoints: unknown, command: unknown): void };
  const command = producer.settingsCommand();
  for (const endpoints of access.getTotalRouteEndpoints()) access.telemetry(endpoints, command);
}

async function shutdownQuietly(client: { shutdown(): Promise<void> }): Promise<void> {
  try {
    await withDeadline(client.shutdown(), 5000, 'rocketmq: shutdown');
  } catch {
    // The proxy may be gone; the connections are closed either way.
  }
}
