/**
 * One subscription = one SimpleConsumer in the subscription's group: long-poll receive with an
 * invisible duration, ack after the handler, nack by changing the invisible duration, and a
 * heartbeat that keeps a running handler's message invisible.
 */
import { MqError, type DeliverySink, type DriverDelivery, type DriverSubscription, type Logger, type SubscriptionSpec } from '@mqkit/core/driver';
import { SimpleConsumer, StatusChecker, type MessageView, type SessionCredentials } from 'rocketmq-client-nodejs';
import definitionPb from 'rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb.js';
import servicePb from 'rocketmq-client-nodejs/proto/apache/rocketmq/v2/service_pb.js';
import { AckBatcher, type AckEntry, type AckEntryResult } from './ack-batcher.ts';
import type { AttemptLedger } from '@mqkit/core/driver';
import { classify } from './classify.ts';
import type { ClientLogger } from './client-logger.ts';
import { withDeadline } from '@mqkit/core/driver';
import { fromMessageView } from './message-codec.ts';
import type { RocketmqConfig } from './options.ts';
import { parseSubscribeOptions } from './options.ts';
import { OrderedLanes } from '@mqkit/core/driver';
import { ackHandle } from './receipt-handle.ts';

/** Shortest invisible duration the broker accepts when giving a message back "now". */
const GIVE_BACK_MS = 1000;

/** Most receive calls one subscription keeps open at once (see {@link receiversFor}). */
const MAX_RECEIVERS = 4;

/** Most entries in one AckMessage request. */
const MAX_ACK_ENTRIES = 64;

/** apache.rocketmq.v2.Code.OK */
const CODE_OK = 20000;

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
  /** Attempts beyond the broker's count (see {@link AttemptLedger}), shared by the driver's subscriptions. */
  readonly attempts: AttemptLedger;
}

/** Where one batched ack goes: a topic on one proxy endpoint (as the received message names them). */
interface AckTarget {
  readonly topic: string;
  readonly endpoints: MessageView['endpoints'];
}

/**
 * How many receive calls a subscription keeps open: one per receive batch that fits into its
 * in-flight budget, at most {@link MAX_RECEIVERS}. A single long poll leaves the consumer idle for
 * a round trip after every batch; a few concurrent ones keep messages arriving while the previous
 * batch is handled. Ordered subscriptions keep one, so messages arrive in the broker's order.
 */
export function receiversFor(spec: Pick<SubscriptionSpec, 'ordered' | 'maxInFlight'>, batch: number, configured?: number): number {
  if (spec.ordered) return 1;
  if (configured !== undefined) return configured;
  return Math.max(1, Math.min(MAX_RECEIVERS, Math.floor(spec.maxInFlight / batch)));
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
  /** When the heartbeat renews this message next (epoch ms); Infinity while a renewal runs. */
  renewAt: number;
  /** Serialises renewals and settles on this message: each must use the newest handle. */
  chain: Promise<unknown> = Promise.resolve();

  constructor(view: MessageView, lane: string | undefined, renewAt: number) {
    this.view = view;
    this.lane = lane;
    this.renewAt = renewAt;
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
  /** Heartbeat period: a held message is renewed every third of its invisible duration. */
  readonly #renewEveryMs: number;
  /** One timer for all held messages' heartbeats (not one per message), running while any is held. */
  #heartbeat: NodeJS.Timeout | undefined;
  readonly #awaitMs: number;
  readonly #batch: number;
  readonly #receivers: number;
  readonly #requestTimeoutMs: number;
  readonly #acks: AckBatcher<AckTarget>;
  readonly #onClosed: (s: RocketmqSubscription) => void;
  readonly #attempts: AttemptLedger;
  /**
   * The start of this subscription's keys in the process-wide attempt ledger: groups each get a
   * copy of a message under the same id, and the ledger serves every client of the process, so it
   * keys on the cluster (proxy endpoints and namespace), the group and the message id.
   */
  readonly #ledgerPrefix: string;
  readonly #held = new Set<Held>();
  /** Held messages by broker message id, to recognise a redelivery of one still being handled. */
  readonly #byMessageId = new Map<string, Held>();
  /** Ordered subscriptions: per lane, the messages received in order, head delivered. */
  readonly #lanes = new OrderedLanes<Held>();
  /** Messages asked for by receive calls still open (counted against maxInFlight). */
  #reserved = 0;
  #paused = false;
  #closed = false;
  /** Receive loops waiting for room, resume or the end of a backoff. */
  readonly #sleepers = new Set<() => void>();
  #loop: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  private constructor(args: SubscriptionArgs, consumer: SimpleConsumer, options: ReturnType<typeof parseSubscribeOptions>) {
    this.#spec = args.spec;
    this.#sink = args.sink;
    this.#fifo = args.fifo;
    this.#logger = args.logger;
    this.#consumer = consumer;
    this.#invisibleMs = options.invisibleDurationMs ?? args.config.invisibleDurationMs;
    this.#renewEveryMs = Math.max(1000, Math.floor(this.#invisibleMs / 3));
    this.#awaitMs = options.awaitDurationMs ?? args.config.awaitDurationMs;
    this.#batch = options.receiveBatchSize ?? args.config.receiveBatchSize;
    this.#receivers = receiversFor(args.spec, this.#batch, options.receiveConcurrency);
    this.#requestTimeoutMs = args.config.requestTimeoutMs;
    this.#onClosed = args.onClosed;
    this.#attempts = args.attempts;
    this.#ledgerPrefix = `${args.config.endpoints}/${args.config.namespace}\u0000${args.spec.group}\u0000`;
    this.#acks = new AckBatcher((target, entries) => this.#sendAcks(target, entries), MAX_ACK_ENTRIES);
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
    subscription.#loop = Promise.all(Array.from({ length: subscription.#receivers }, () => subscription.#run())).then(() => {});
    return subscription;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#wake();
  }

  #wake(): void {
    if (this.#sleepers.size === 0) return;
    const sleepers = [...this.#sleepers];
    this.#sleepers.clear();
    for (const wake of sleepers) wake();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#wake();
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    // Acks already asked for go out now rather than after the next turn.
    this.#acks.flush();
    // A long poll in flight may still bring messages: wait for it so they can be given back.
    await this.#loop?.catch(() => {});
    const unsettled = [...this.#held];
    await Promise.allSettled(unsettled.map((held) => this.#giveBack(held)));
    await withDeadline(this.#consumer.shutdown(), 5000, 'consumer shutdown').catch(() => {});
    this.#onClosed(this);
  }

  /** One receive loop; {@link RocketmqSubscription.start} runs `#receivers` of them. */
  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      const room = this.#spec.maxInFlight - this.#held.size - this.#reserved;
      if (this.#paused || room <= 0) {
        await new Promise<void>((resolve) => this.#sleepers.add(resolve));
        continue;
      }
      const want = Math.min(this.#batch, room);
      let views: MessageView[];
      this.#reserved += want;
      try {
        views = await withDeadline(this.#consumer.receive(want, this.#invisibleMs), this.#awaitMs + this.#requestTimeoutMs + 5000, 'receive');
        failures = 0;
      } catch (err) {
        if (this.#closed) return;
        failures += 1;
        const error = classify(err, { topic: this.#spec.topic, group: this.#spec.group });
        if (!error.retryable || failures % 10 === 1) this.#sink.error(error);
        await this.#sleep(Math.min(5000, 200 * 2 ** Math.min(failures, 5)));
        continue;
      } finally {
        this.#reserved -= want;
      }
      for (const view of views) this.#accept(view);
      // Room this call reserved but did not use is free again for a loop waiting for it.
      if (views.length < want) this.#wake();
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#sleepers.add(wake);
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
    if (this.#attempts.acked(this.#ledgerKey(view.messageId))) {
      // Acked here before: the broker re-popped its FIFO queue from an earlier message (see
      // AttemptLedger). Its handler ran to an ack; ack this copy too, out of core's sight.
      void this.#ack(new Held(view, undefined, Number.POSITIVE_INFINITY)).catch((err: unknown) => this.#logger.debug({ err, topic: this.#spec.topic, messageId: view.messageId }, 'rocketmq: acking a copy of an acked message failed; it comes back and is acked again'));
      return;
    }
    const lane = this.#spec.ordered ? (view.messageGroup || view.properties.get('x-mqkit-key') || undefined) : undefined;
    const held = new Held(view, lane, Date.now() + this.#renewEveryMs);
    this.#held.add(held);
    this.#byMessageId.set(view.messageId, held);
    this.#startHeartbeat();
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
      attempt: this.#attempts.attempt(this.#ledgerKey(held.view.messageId), held.view.deliveryAttempt ?? 1),
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
    const backMs = Math.max(GIVE_BACK_MS, delayMs);
    let acked = false;
    try {
      await held.then(() => (action === 'ack' ? this.#ack(held) : this.#changeInvisible(held, backMs)));
      acked = action === 'ack';
      if (acked) this.#attempts.settled(this.#ledgerKey(held.view.messageId));
    } finally {
      // A failed ack means the message comes back: in an ordered lane its successors must wait too.
      this.#release(held, acked ? undefined : backMs);
    }
  }

  async #ack(held: Held): Promise<void> {
    const { view } = held;
    const receiptHandle = held.renewed && !this.#fifo ? ackHandle(view.receiptHandle) : view.receiptHandle;
    try {
      await this.#acks.ack(`${view.topic}\u0000${view.endpoints.facade}`, view, { messageId: view.messageId, receiptHandle });
    } catch (err) {
      throw classify(err, { topic: this.#spec.topic, group: this.#spec.group, during: 'ack' });
    }
  }

  /**
   * One AckMessage request for acks of one topic on one endpoint, built as the client's own
   * `ackMessage` builds its single-entry one. The client ignores per-entry results; here each
   * entry's status decides its own ack (a failed entry means that message will come back).
   */
  async #sendAcks(target: AckTarget, entries: readonly AckEntry[]): Promise<AckEntryResult[]> {
    const request = new servicePb.AckMessageRequest()
      .setGroup(new definitionPb.Resource().setName(this.#spec.group))
      .setTopic(new definitionPb.Resource().setName(target.topic));
    for (const entry of entries) request.addEntries().setMessageId(entry.messageId).setReceiptHandle(entry.receiptHandle);
    const response = (await this.#consumer.ackMessageViaRpc(target.endpoints, request, this.#requestTimeoutMs)).toObject();
    // Throws the client's typed exception when the request as a whole failed (OK and
    // MULTIPLE_RESULTS pass: then the entries tell).
    StatusChecker.check(response.status);
    return entryResults(entries, response.entriesList, response.status);
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
          this.#forget(later);
          if (!later.delivered) this.#attempts.givenBack(this.#ledgerKey(later.view.messageId));
          void later.then(() => this.#changeInvisible(later, nackedForMs)).catch((err: unknown) => this.#logger.debug({ err }, 'rocketmq: giving back a held message failed; it returns after its invisible duration'));
        }
      } else {
        const next = this.#lanes.acked(held.lane, held);
        if (next && !next.delivered && !this.#closed) this.#deliver(next);
      }
    }
    this.#wake();
  }

  #ledgerKey(messageId: string): string {
    return this.#ledgerPrefix + messageId;
  }

  #forget(held: Held): void {
    this.#held.delete(held);
    if (this.#byMessageId.get(held.view.messageId) === held) this.#byMessageId.delete(held.view.messageId);
  }

  /**
   * Heartbeat: renew each held message's invisible duration every third of it. One timer ticks a
   * few times per period and renews the messages that are due (a renewal is at most a tick late,
   * well inside the invisible duration); it stops when nothing is held.
   */
  #startHeartbeat(): void {
    if (this.#heartbeat !== undefined || this.#closed) return;
    const tick = Math.max(250, Math.floor(this.#renewEveryMs / 4));
    this.#heartbeat = setInterval(() => this.#renewDue(), tick);
    this.#heartbeat.unref();
  }

  #renewDue(): void {
    if (this.#held.size === 0 || this.#closed) {
      clearInterval(this.#heartbeat);
      this.#heartbeat = undefined;
      return;
    }
    const now = Date.now();
    for (const held of this.#held) {
      if (held.settled || held.renewAt > now) continue;
      held.renewAt = Number.POSITIVE_INFINITY;
      void held
        .then(() => (held.settled ? Promise.resolve() : this.#changeInvisible(held, this.#invisibleMs)))
        .catch((err: unknown) => this.#logger.warn({ err, topic: this.#spec.topic, group: this.#spec.group }, 'rocketmq: renewing a message failed; it may be redelivered'))
        .finally(() => {
          held.renewAt = Date.now() + this.#renewEveryMs;
        });
    }
  }

  /** On close: make an unsettled message visible again soon, for another consumer. */
  async #giveBack(held: Held): Promise<void> {
    if (!held.delivered && !held.settled) this.#attempts.givenBack(this.#ledgerKey(held.view.messageId));
    held.settled = true;
    this.#forget(held);
    await held.then(() => this.#changeInvisible(held, GIVE_BACK_MS)).catch(() => {
      // Left to expire: it comes back after its invisible duration.
    });
  }
}

type Status = { code: number; message: string } | undefined;

/**
 * Each entry's outcome from an AckMessage response: matched by position (the proxy answers in
 * request order) and checked by message id, else looked up by message id. An entry the response
 * does not mention shares the request's status.
 */
export function entryResults(
  entries: readonly AckEntry[],
  results: ReadonlyArray<{ messageId: string; status?: Status }>,
  overall: Status,
): AckEntryResult[] {
  let byId: Map<string, Status> | undefined;
  return entries.map((entry, i) => {
    let status: Status;
    const same = results[i];
    if (same && same.messageId === entry.messageId) status = same.status ?? overall;
    else {
      byId ??= new Map(results.map((r) => [r.messageId, r.status ?? overall]));
      status = byId.has(entry.messageId) ? byId.get(entry.messageId) : overall;
    }
    if (status === undefined || status.code === CODE_OK) return undefined;
    return Object.assign(new Error(status.message || 'ack refused'), { code: status.code });
  });
}
