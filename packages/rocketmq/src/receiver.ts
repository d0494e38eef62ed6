/**
 * One subscription's receiver ({@link DriverReceiver}): one SimpleConsumer in the subscription's
 * group. Receive is a long poll with an invisible duration, ack is one AckMessage request per
 * (topic, proxy endpoint), nack and lease extension change the invisible duration. Core runs the
 * consumer (loops, lanes, heartbeat, attempt ledger, give-back on close).
 */
import { type MqError, withDeadline, type DriverReceiver, type ReceivedMessage, type SettleResults, type SubscriptionSpec } from '@mqkit/core/driver';
import { SimpleConsumer, StatusChecker, type MessageView, type SessionCredentials } from 'rocketmq-client-nodejs';
import definitionPb from 'rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb.js';
import servicePb from 'rocketmq-client-nodejs/proto/apache/rocketmq/v2/service_pb.js';
import { classify } from './classify.ts';
import type { ClientLogger } from './client-logger.ts';
import { fromMessageView, PROPERTY } from './message-codec.ts';
import { parseSubscribeOptions, type RocketmqConfig } from './options.ts';
import { ackHandle } from './receipt-handle.ts';

/** Shortest invisible duration the broker accepts when giving a message back "now". */
const GIVE_BACK_MS = 1000;

/** Most receive calls one subscription keeps open at once (see {@link receiversFor}). */
const MAX_RECEIVERS = 4;

/** Most entries in one AckMessage request. */
const MAX_ACK_ENTRIES = 64;

/** apache.rocketmq.v2.Code.OK */
const CODE_OK = 20000;

/** A received message: the client's view (its receipt handle changes on renewal). */
export interface RocketmqMessage extends ReceivedMessage {
  readonly view: MessageView;
  /** The receipt handle was renewed at least once (see {@link ackHandle}). */
  renewed: boolean;
}

/** What {@link RocketmqReceiver.start} needs. */
export interface ReceiverArgs {
  readonly spec: SubscriptionSpec;
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
  readonly onClosed: (receiver: RocketmqReceiver) => void;
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

export class RocketmqReceiver implements DriverReceiver<RocketmqMessage> {
  readonly batchSize: number;
  readonly settleBatchSize = MAX_ACK_ENTRIES;
  readonly concurrency: number;
  readonly leaseMs: number;
  readonly scope: string;
  /**
   * A FIFO queue is popped in batches, and popped again from an earlier unsettled message it
   * forgets the batch's acks (apache/rocketmq ConsumerOrderInfoManager): copies of acked messages
   * come back, each with one more attempt (issue #16, model seed 1496463186/7).
   */
  readonly redeliversAcked = true;
  readonly #spec: SubscriptionSpec;
  readonly #fifo: boolean;
  readonly #consumer: SimpleConsumer;
  readonly #receiveDeadlineMs: number;
  readonly #requestTimeoutMs: number;
  readonly #onClosed: (receiver: RocketmqReceiver) => void;
  #closing: Promise<void> | undefined;

  /** @internal use {@link RocketmqReceiver.start} (tests pass a stand-in consumer). */
  constructor(args: Omit<ReceiverArgs, 'clientOptions'>, consumer: SimpleConsumer, options: ReturnType<typeof parseSubscribeOptions>) {
    this.#spec = args.spec;
    this.#fifo = args.fifo;
    this.#consumer = consumer;
    this.#requestTimeoutMs = args.config.requestTimeoutMs;
    this.#receiveDeadlineMs = (options.awaitDurationMs ?? args.config.awaitDurationMs) + this.#requestTimeoutMs + 5000;
    this.#onClosed = args.onClosed;
    this.batchSize = options.receiveBatchSize ?? args.config.receiveBatchSize;
    this.concurrency = receiversFor(args.spec, this.batchSize, options.receiveConcurrency);
    this.leaseMs = options.invisibleDurationMs ?? args.config.invisibleDurationMs;
    // Message ids are unique per cluster (proxy endpoints and namespace) and group.
    this.scope = `${args.config.endpoints}/${args.config.namespace}\u0000${args.spec.group}`;
  }

  /** Creates the group's SimpleConsumer and waits for its startup. */
  static async start(args: ReceiverArgs): Promise<RocketmqReceiver> {
    const options = parseSubscribeOptions(args.spec.options);
    const consumer = new SimpleConsumer({
      ...args.clientOptions,
      consumerGroup: args.spec.group,
      subscriptions: new Map([[args.spec.topic, options.tag ?? '*']]),
      awaitDuration: options.awaitDurationMs ?? args.config.awaitDurationMs,
      // Retries of receive belong to core's receive loop, not hidden inside the client.
      maxRetryAttempts: 1,
    });
    try {
      await withDeadline(consumer.startup(), args.config.startupTimeoutMs, 'consumer startup');
    } catch (err) {
      await consumer.shutdown().catch(() => {});
      throw classify(err, { topic: args.spec.topic, group: args.spec.group });
    }
    return new RocketmqReceiver(args, consumer, options);
  }

  /**
   * One long poll. The client cannot cancel it, so an abort (close) waits for it: the messages it
   * brings are given back by core rather than left invisible for `leaseMs`.
   */
  async receive(max: number): Promise<RocketmqMessage[]> {
    let views: MessageView[];
    try {
      views = await withDeadline(this.#consumer.receive(max, this.leaseMs), this.#receiveDeadlineMs, 'receive');
    } catch (err) {
      throw this.#classify(err);
    }
    return views.map((view) => ({
      view,
      renewed: false,
      envelope: fromMessageView(view),
      deliveryCount: view.deliveryAttempt ?? 1,
      id: view.messageId,
      orderingKey: this.#spec.ordered ? view.messageGroup || view.properties.get(PROPERTY.key) || undefined : undefined,
      meta: {
        messageId: view.messageId,
        ...(view.messageGroup ? { messageGroup: view.messageGroup } : {}),
        ...(view.offset !== undefined ? { queueOffset: String(view.offset) } : {}),
      },
    }));
  }

  /** One AckMessage request per (topic, endpoint) the messages came from; each entry's status decides its ack. */
  async ack(messages: readonly RocketmqMessage[]): Promise<SettleResults> {
    const targets = new Map<string, number[]>();
    messages.forEach((m, i) => {
      const key = `${m.view.topic}\u0000${m.view.endpoints.facade}`;
      const list = targets.get(key);
      if (list) list.push(i);
      else targets.set(key, [i]);
    });
    const results: Array<MqError | undefined> = new Array<MqError | undefined>(messages.length).fill(undefined);
    await Promise.all(
      [...targets.values()].map(async (indexes) => {
        const batch = indexes.map((i) => messages[i]!);
        let outcomes: Array<MqError | undefined>;
        try {
          outcomes = await this.#sendAcks(batch);
        } catch (err) {
          outcomes = batch.map(() => this.#classify(err, 'ack'));
        }
        indexes.forEach((i, j) => (results[i] = outcomes[j]));
      }),
    );
    return results;
  }

  /** Visible again after `delayMs` (at least the broker's shortest give-back). */
  nack(messages: readonly RocketmqMessage[], delayMs: number): Promise<SettleResults> {
    return this.#changeInvisible(messages, Math.max(GIVE_BACK_MS, delayMs));
  }

  extend(messages: readonly RocketmqMessage[], leaseMs: number): Promise<SettleResults> {
    return this.#changeInvisible(messages, leaseMs);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await withDeadline(this.#consumer.shutdown(), 5000, 'consumer shutdown').catch(() => {});
      this.#onClosed(this);
    })();
    return this.#closing;
  }

  /**
   * One AckMessage request, built as the client's own `ackMessage` builds its single-entry one.
   * The client ignores per-entry results; here each entry's status decides its own ack (a failed
   * entry means that message comes back).
   */
  async #sendAcks(batch: readonly RocketmqMessage[]): Promise<Array<MqError | undefined>> {
    const { topic, endpoints } = batch[0]!.view;
    const request = new servicePb.AckMessageRequest()
      .setGroup(new definitionPb.Resource().setName(this.#spec.group))
      .setTopic(new definitionPb.Resource().setName(topic));
    const entries = batch.map(({ view, renewed }) => ({
      messageId: view.messageId,
      // After a renewal the ack needs the original handle's start offset (apache/rocketmq#9583).
      receiptHandle: renewed && !this.#fifo ? ackHandle(view.receiptHandle) : view.receiptHandle,
    }));
    for (const entry of entries) request.addEntries().setMessageId(entry.messageId).setReceiptHandle(entry.receiptHandle);
    const response = (await this.#consumer.ackMessageViaRpc(endpoints, request, this.#requestTimeoutMs)).toObject();
    // Throws the client's typed exception when the request as a whole failed (OK and
    // MULTIPLE_RESULTS pass: then the entries tell).
    StatusChecker.check(response.status);
    return entryResults(entries, response.entriesList, response.status).map((err) => (err ? this.#classify(err, 'ack') : undefined));
  }

  async #changeInvisible(messages: readonly RocketmqMessage[], ms: number): Promise<SettleResults> {
    return Promise.all(
      messages.map(async (message) => {
        try {
          // The client writes the renewed receipt handle into the view.
          await this.#consumer.changeInvisibleDuration(message.view, ms);
          message.renewed = true;
          return undefined;
        } catch (err) {
          return this.#classify(err, 'changeInvisibleDuration');
        }
      }),
    );
  }

  #classify(err: unknown, during?: string): MqError {
    return classify(err, { topic: this.#spec.topic, group: this.#spec.group, ...(during ? { during } : {}) });
  }
}

type Status = { code: number; message: string } | undefined;

/**
 * Each entry's outcome from an AckMessage response: matched by position (the proxy answers in
 * request order) and checked by message id, else looked up by message id. An entry the response
 * does not mention shares the request's status.
 */
export function entryResults(
  entries: ReadonlyArray<{ readonly messageId: string }>,
  results: ReadonlyArray<{ messageId: string; status?: Status }>,
  overall: Status,
): Array<Error | undefined> {
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
