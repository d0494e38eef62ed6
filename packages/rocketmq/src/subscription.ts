/**
 * One subscription = one SimpleConsumer in the subscription's group: long-poll receive with an
 * invisible duration, ack after the handler, nack by changing the invisible duration, and a
 * heartbeat that keeps a running handler's message invisible.
 */
import { MqError, type DeliverySink, type DriverDelivery, type DriverSubscription, type Logger, type SubscriptionSpec } from '@mqkit/core/driver';
import { SimpleConsumer, type MessageView, type SessionCredentials } from 'rocketmq-client-nodejs';
import { classify } from './classify.ts';
import type { ClientLogger } from './client-logger.ts';
import { withDeadline } from './deadline.ts';
import { fromMessageView } from './message-codec.ts';
import type { RocketmqConfig } from './options.ts';
import { parseSubscribeOptions } from './options.ts';
import { OrderedLanes } from './ordered-lanes.ts';
import { ackHandle } from './receipt-handle.ts';

/** Shortest invisible duration the broker accepts when giving a message back "now". */
const GIVE_BACK_MS = 1000;

/** What {@link RocketmqSubscription.start} needs. */
export interface SubscriptionArgs {
  readonly spec: SubscriptionSpec;
  readonly sink: DeliverySink;
  /** The topic is FIFO (message groups; the ack-after-renew workaround does not apply). */
  readonly fifo: boolean;
  readonly config: RocketmqConfig;
  readonly clientOptions: {
    endpoints: string;
    namespace: string;
    sslEnabled: boolean;
    requestTimeout: number;
    logger: ClientLogger;
    sessionCredentials?: SessionCredentials;
  };
  readonly logger: Logger;
  readonly onClosed: (subscription: RocketmqSubscription) => void;
}

interface ConsumerAccess {
  ackMessage(view: MessageView): Promise<Array<{ status?: { code: number; message: string } }>>;
}

/** A received message until it is settled or given back. */
class Held {
  view: MessageView;
  readonly lane: string | undefined;
  /** The receipt handle was renewed at least once (see {@link ackHandle}). */
  renewed = false;
  /** Handed to core (ordered subscriptions hold later messages of a lane back). */
  delivered = false;
  settled = false;
  timer: NodeJS.Timeout | undefined;
  /** Serialises renewals and settles on this message: each must use the newest handle. */
  chain: Promise<unknown> = Promise.resolve();

  constructor(view: MessageView, lane: string | undefined) {
    this.view = view;
    this.lane = lane;
  }

  then<T>(step: () => Promise<T>): Promise<T> {
    const next = this.chain.then(step, step);
    this.chain = next.catch(() => {});
    return next;
  }
}

export class RocketmqSubscription implements DriverSubscription {
  readonly #spec: SubscriptionSpec;
  readonly #sink: DeliverySink;
  readonly #fifo: boolean;
  readonly #logger: Logger;
  readonly #consumer: SimpleConsumer;
  readonly #invisibleMs: number;
  readonly #awaitMs: number;
  readonly #batch: number;
  readonly #requestTimeoutMs: number;
  readonly #onClosed: (s: RocketmqSubscription) => void;
  readonly #held = new Set<Held>();
  /** Held messages by broker message id, to recognise a redelivery of one still being handled. */
  readonly #byMessageId = new Map<string, Held>();
  /** Ordered subscriptions: per lane, the messages received in order, head delivered. */
  readonly #lanes = new OrderedLanes<Held>();
  #paused = false;
  #closed = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  private constructor(args: SubscriptionArgs, consumer: SimpleConsumer, options: ReturnType<typeof parseSubscribeOptions>) {
    this.#spec = args.spec;
    this.#sink = args.sink;
    this.#fifo = args.fifo;
    this.#logger = args.logger;
    this.#consumer = consumer;
    this.#invisibleMs = options.invisibleDurationMs ?? args.config.invisibleDurationMs;
    this.#awaitMs = options.awaitDurationMs ?? args.config.awaitDurationMs;
    this.#batch = options.receiveBatchSize ?? args.config.receiveBatchSize;
    this.#requestTimeoutMs = args.config.requestTimeoutMs;
    this.#onClosed = args.onClosed;
  }

  /** Creates the group's SimpleConsumer, waits for its startup and starts receiving. */
  static async start(args: SubscriptionArgs): Promise<RocketmqSubscription> {
    const options = parseSubscribeOptions(args.spec.options);
    const awaitDuration = options.awaitDurationMs ?? args.config.awaitDurationMs;
    const consumer = new SimpleConsumer({
      ...args.clientOptions,
      consumerGroup: args.spec.group,
      subscriptions: new Map([[args.spec.topic, options.tag ?? '*']]),
      awaitDuration,
      // Retries of receive belong to this loop, not hidden inside the client.
      maxRetryAttempts: 1,
    });
    try {
      await withDeadline(consumer.startup(), args.config.startupTimeoutMs, 'consumer startup');
    } catch (err) {
      await consumer.shutdown().catch(() => {});
      throw classify(err, { topic: args.spec.topic, group: args.spec.group });
    }
    const subscription = new RocketmqSubscription(args, consumer, options);
    subscription.#loop = subscription.#run();
    return subscription;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#wake?.();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    // A long poll in flight may still bring messages: wait for it so they can be given back.
    await this.#loop?.catch(() => {});
    const unsettled = [...this.#held];
    await Promise.allSettled(unsettled.map((held) => this.#giveBack(held)));
    await withDeadline(this.#consumer.shutdown(), 5000, 'consumer shutdown').catch(() => {});
    this.#onClosed(this);
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      const room = this.#spec.maxInFlight - this.#held.size;
      if (this.#paused || room <= 0) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = undefined;
        continue;
      }
      let views: MessageView[];
      try {
        views = await withDeadline(this.#consumer.receive(Math.min(this.#batch, room), this.#invisibleMs), this.#awaitMs + this.#requestTimeoutMs + 5000, 'receive');
        failures = 0;
      } catch (err) {
        if (this.#closed) return;
        failures += 1;
        const error = classify(err, { topic: this.#spec.topic, group: this.#spec.group });
        if (!error.retryable || failures % 10 === 1) this.#sink.error(error);
        await this.#sleep(Math.min(5000, 200 * 2 ** Math.min(failures, 5)));
        continue;
      }
      for (const view of views) this.#accept(view);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #accept(view: MessageView): void {
    const current = this.#byMessageId.get(view.messageId);
    if (current && !current.settled && !this.#closed) {
      // Redelivered while its handler still runs (a renewal failed, e.g. during a proxy restart):
      // the new receipt handle is the valid one, so the running handler settles with it.
      void current.then(async () => {
        current.view = view;
        current.renewed = false;
      });
      this.#logger.debug({ topic: this.#spec.topic, messageId: view.messageId }, 'rocketmq: redelivered while being handled; keeping the newest receipt handle');
      return;
    }
    const lane = this.#spec.ordered ? (view.messageGroup || view.properties.get('x-mqkit-key') || undefined) : undefined;
    const held = new Held(view, lane);
    this.#held.add(held);
    this.#byMessageId.set(view.messageId, held);
    this.#scheduleRenewal(held);
    if (this.#closed) return; // given back by close()
    if (lane === undefined) {
      this.#deliver(held);
      return;
    }
    if (this.#lanes.add(lane, held)) this.#deliver(held);
  }

  #deliver(held: Held): void {
    held.delivered = true;
    const envelope = fromMessageView(held.view);
    const delivery: DriverDelivery = {
      envelope,
      attempt: Math.max(1, held.view.deliveryAttempt ?? 1),
      orderingKey: held.lane,
      meta: {
        messageId: held.view.messageId,
        ...(held.view.messageGroup ? { messageGroup: held.view.messageGroup } : {}),
        ...(held.view.offset !== undefined ? { queueOffset: String(held.view.offset) } : {}),
      },
      ack: () => this.#settle(held, 'ack', 0),
      nack: (delayMs: number) => this.#settle(held, 'nack', delayMs),
    };
    this.#sink.deliver(delivery);
  }

  async #settle(held: Held, action: 'ack' | 'nack', delayMs: number): Promise<void> {
    if (this.#closed || held.settled) {
      throw new MqError('CLOSED', `rocketmq: subscription to ${this.#spec.topic} is closed; the message will be redelivered`);
    }
    held.settled = true;
    clearTimeout(held.timer);
    const backMs = Math.max(GIVE_BACK_MS, delayMs);
    let acked = false;
    try {
      await held.then(() => (action === 'ack' ? this.#ack(held) : this.#changeInvisible(held, backMs)));
      acked = action === 'ack';
    } finally {
      // A failed ack means the message comes back: in an ordered lane its successors must wait too.
      this.#release(held, acked ? undefined : backMs);
    }
  }

  async #ack(held: Held): Promise<void> {
    const view = held.renewed && !this.#fifo ? { ...held.view, receiptHandle: ackHandle(held.view.receiptHandle) } : held.view;
    try {
      const entries = await (this.#consumer as unknown as ConsumerAccess).ackMessage(view as MessageView);
      // The client ignores per-entry results; a failed entry means the message will come back.
      const failed = entries.find((e) => e.status && e.status.code !== 20000);
      if (failed?.status) throw Object.assign(new Error(failed.status.message || 'ack refused'), { code: failed.status.code });
    } catch (err) {
      throw classify(err, { topic: this.#spec.topic, group: this.#spec.group, during: 'ack' });
    }
  }

  async #changeInvisible(held: Held, ms: number): Promise<void> {
    try {
      await this.#consumer.changeInvisibleDuration(held.view, ms);
      held.renewed = true;
    } catch (err) {
      throw classify(err, { topic: this.#spec.topic, group: this.#spec.group, during: 'changeInvisibleDuration' });
    }
  }

  /**
   * Forget a settled message; in an ordered lane hand over the next one, or after a nack give the
   * lane's later messages back too so the broker redelivers them after the retried one.
   */
  #release(held: Held, nackedForMs: number | undefined): void {
    this.#forget(held);
    if (held.lane !== undefined) {
      if (nackedForMs !== undefined) {
        for (const later of this.#lanes.nacked(held.lane, held)) {
          later.settled = true;
          clearTimeout(later.timer);
          this.#forget(later);
          void later.then(() => this.#changeInvisible(later, nackedForMs)).catch((err: unknown) => this.#logger.debug({ err }, 'rocketmq: giving back a held message failed; it returns after its invisible duration'));
        }
      } else {
        const next = this.#lanes.acked(held.lane, held);
        if (next && !next.delivered && !this.#closed) this.#deliver(next);
      }
    }
    this.#wake?.();
  }

  #forget(held: Held): void {
    this.#held.delete(held);
    if (this.#byMessageId.get(held.view.messageId) === held) this.#byMessageId.delete(held.view.messageId);
  }

  /** Heartbeat: renew the invisible duration every third of it while the message is held. */
  #scheduleRenewal(held: Held): void {
    const every = Math.max(1000, Math.floor(this.#invisibleMs / 3));
    held.timer = setTimeout(() => {
      if (held.settled || this.#closed) return;
      void held
        .then(() => (held.settled ? Promise.resolve() : this.#changeInvisible(held, this.#invisibleMs)))
        .catch((err: unknown) => this.#logger.warn({ err, topic: this.#spec.topic, group: this.#spec.group }, 'rocketmq: renewing a message failed; it may be redelivered'))
        .finally(() => {
          if (!held.settled && !this.#closed) this.#scheduleRenewal(held);
        });
    }, every);
    held.timer.unref();
  }

  /** On close: make an unsettled message visible again soon, for another consumer. */
  async #giveBack(held: Held): Promise<void> {
    held.settled = true;
    clearTimeout(held.timer);
    this.#forget(held);
    await held.then(() => this.#changeInvisible(held, GIVE_BACK_MS)).catch(() => {
      // Left to expire: it comes back after its invisible duration.
    });
  }
}
