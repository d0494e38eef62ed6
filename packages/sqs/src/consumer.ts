/**
 * One driver subscription on one SQS queue: long-polling receive loops, a visibility heartbeat
 * for every unsettled message, batched deletes (ack) and visibility changes (nack, release),
 * re-scheduling of messages delayed beyond SQS's 15 minutes, and release of unsettled messages on
 * close.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { MqError, sleep, type DeliverySink, type DriverDelivery, type DriverSubscription, type Logger } from '@mqkit/core/driver';
import { Batcher } from './batcher.ts';
import { classifyAwsError } from './errors.ts';
import type { SqsSubscribeSettings } from './options.ts';
import { settleEntries } from './batch-entries.ts';
import { MAX_DELAY_SECONDS, type Sender } from './send.ts';
import { fromWire, toWire } from './wire.ts';

/** SQS caps how long a message may stay hidden after one receive. */
export const MAX_HIDDEN_MS = 12 * 3600_000;
/** Most message ids whose unhandled receives an ordered consumer remembers (see `#givenBack`). */
const MAX_GIVEN_BACK = 10_000;
/** Shortest redelivery delay of a nack: SQS hides in whole seconds (see {@link QueueConsumer} nack). */
export const MIN_NACK_SECONDS = 1;
/** Margin kept below {@link MAX_HIDDEN_MS}. */
const HIDDEN_MARGIN_MS = 60_000;

interface Held {
  readonly queueUrl: string;
  /** SQS MessageId (stable across receives). */
  readonly messageId: string;
  /** FIFO message group when the subscription is ordered (see {@link QueueConsumer}). */
  readonly lane: string | undefined;
  readonly receiptHandle: string;
  readonly receivedAt: number;
  hiddenUntil: number;
  settled: boolean;
  extending: boolean;
}

interface VisibilityEntry {
  readonly receiptHandle: string;
  readonly seconds: number;
}

export interface ConsumerParts {
  readonly sqs: SQSClient;
  readonly sender: Sender;
  readonly logger: Logger;
  /** Seals the attempt count of re-sent copies (see wire.ts). */
  readonly signingKey: Uint8Array;
  /** Receives given back unhandled, per SQS MessageId (see {@link QueueConsumer}). */
  readonly givenBack: Map<string, number>;
  readonly requestTimeoutMs: number;
  /** Shared per driver, so deletes of all subscriptions of one queue coalesce. */
  readonly deletes: Batcher<string>;
  readonly visibility: Batcher<VisibilityEntry>;
}

/** Delete and visibility batchers over one SQS client. */
export function makeBatchers(sqs: SQSClient, requestTimeoutMs: number): Pick<ConsumerParts, 'deletes' | 'visibility'> {
  const queueName = (url: string): string => url.slice(url.lastIndexOf('/') + 1);
  const deletes = new Batcher<string>(
    async (queueUrl, handles) => {
      const what = `DeleteMessageBatch on ${queueName(queueUrl)}`;
      const r = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: handles.map((ReceiptHandle, i) => ({ Id: String(i), ReceiptHandle })) }), {
        abortSignal: AbortSignal.timeout(requestTimeoutMs),
      });
      return settleEntries(handles.length, r.Successful, r.Failed, what);
    },
    (err) => classifyAwsError(err, 'DeleteMessageBatch'),
    2,
  );
  const visibility = new Batcher<VisibilityEntry>(
    async (queueUrl, entries) => {
      const what = `ChangeMessageVisibilityBatch on ${queueName(queueUrl)}`;
      const r = await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: entries.map((e, i) => ({ Id: String(i), ReceiptHandle: e.receiptHandle, VisibilityTimeout: e.seconds })),
        }),
        { abortSignal: AbortSignal.timeout(requestTimeoutMs) },
      );
      return settleEntries(entries.length, r.Successful, r.Failed, what);
    },
    (err) => classifyAwsError(err, 'ChangeMessageVisibilityBatch'),
  );
  return { deletes, visibility };
}

/** What one subscription consumes. */
export interface ConsumerSpec {
  readonly topic: string;
  readonly group: string;
  readonly queueUrl: string;
  readonly maxInFlight: number;
  /** Hand core at most one unsettled message per FIFO message group. */
  readonly ordered: boolean;
  /**
   * Declares the queue (and its subscription) again and returns its URL; called when receiving
   * finds the queue gone. Absent when the adapter does not declare.
   */
  readonly redeclare?: (() => Promise<string>) | undefined;
  readonly settings: SqsSubscribeSettings;
}

/**
 * Ordered subscriptions: one receive may return several messages of one FIFO message group.
 * Core must see them one at a time, so the later ones wait here (hidden, heart-beaten) until the
 * earlier one is acked. When it is nacked instead, the waiting ones are released at once: SQS
 * returns nothing more of that group while the nacked message is hidden, then returns it first,
 * which keeps a retried message ahead of its successors (their receive count grows by one).
 */
export class QueueConsumer implements DriverSubscription {
  readonly #parts: ConsumerParts;
  readonly #spec: ConsumerSpec;
  readonly #sink: DeliverySink;
  readonly #held = new Set<Held>();
  /** Ordered mode: per message group, the deliveries not yet handed to core, in order. */
  readonly #waiting = new Map<string, Array<() => void>>();
  /** Ordered mode: message groups with a delivery handed to core and not settled. */
  readonly #activeLanes = new Set<string>();
  readonly #abort = new AbortController();
  readonly #pollers: Array<Promise<void>> = [];
  readonly #waiters: Array<() => void> = [];
  #reserved = 0;
  #queueUrl: string;
  #open = true;
  #paused = false;
  #heartbeat: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  constructor(parts: ConsumerParts, spec: ConsumerSpec, sink: DeliverySink) {
    this.#parts = parts;
    this.#spec = spec;
    this.#queueUrl = spec.queueUrl;
    this.#sink = sink;
  }

  /** Starts the receive loops and the heartbeat. */
  start(): void {
    const { settings, maxInFlight } = this.#spec;
    // Ordered: one receive loop, so responses are taken in the order SQS handed them out (not
    // every implementation locks a FIFO group across concurrent receives; moto does not).
    const pollers = settings.pollers ?? (this.#spec.ordered ? 1 : Math.min(8, Math.max(1, Math.ceil(maxInFlight / 10))));
    for (let i = 0; i < pollers; i++) this.#pollers.push(this.#poll());
    if (settings.heartbeat) {
      const period = Math.max(500, Math.floor((settings.visibilityTimeoutSec * 1000) / 3));
      this.#heartbeat = setInterval(() => this.#beat(), period);
      this.#heartbeat.unref();
    }
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#wake();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#open = false;
    this.#abort.abort(new MqError('CLOSED', 'subscription closed'));
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#wake();
    await Promise.allSettled(this.#pollers);
    const unsettled = [...this.#held].filter((h) => !h.settled);
    this.#held.clear();
    // Held back behind their lane's head, these never reached a handler: not attempts.
    for (const held of this.#pendingRelease.keys()) if (!held.settled) this.#countGivenBack(held.messageId);
    this.#pendingRelease.clear();
    // Give unsettled messages back now rather than after their visibility timeout.
    const released = await Promise.allSettled(unsettled.map((h) => this.#parts.visibility.add(h.queueUrl, { receiptHandle: h.receiptHandle, seconds: 0 })));
    const failed = released.filter((r) => r.status === 'rejected').length;
    if (failed > 0) this.#parts.logger.warn({ topic: this.#spec.topic, group: this.#spec.group, failed }, 'could not release some messages on close; they return after their visibility timeout');
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  #waitForWake(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  async #poll(): Promise<void> {
    const { settings, maxInFlight } = this.#spec;
    let failures = 0;
    while (this.#open) {
      const room = maxInFlight - this.#held.size - this.#reserved;
      if (this.#paused || room <= 0) {
        await this.#waitForWake();
        continue;
      }
      const count = Math.min(10, room);
      this.#reserved += count;
      let messages: Message[];
      try {
        const r = await this.#parts.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.#queueUrl,
            MaxNumberOfMessages: count,
            WaitTimeSeconds: settings.waitTimeSec,
            VisibilityTimeout: settings.visibilityTimeoutSec,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp', 'MessageGroupId'],
          }),
          { abortSignal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(settings.waitTimeSec * 1000 + this.#parts.requestTimeoutMs)]) },
        );
        messages = r.Messages ?? [];
        failures = 0;
      } catch (err) {
        if (!this.#open) return;
        failures += 1;
        const error = classifyAwsError(err, `ReceiveMessage on ${this.#spec.topic}`);
        if (failures === 1 || failures % 30 === 0) this.#sink.error(error);
        if (error.code === 'NOT_FOUND' && this.#spec.redeclare) {
          // The queue vanished (deleted, or an emulator restarted without it): declare it again.
          try {
            this.#queueUrl = await this.#spec.redeclare();
          } catch (redeclareError) {
            this.#parts.logger.warn({ err: redeclareError, topic: this.#spec.topic }, 're-declaring a vanished queue failed');
          }
        }
        await sleep(Math.min(5000, 200 * 2 ** Math.min(failures, 5)), this.#abort.signal).catch(() => undefined);
        continue;
      } finally {
        this.#reserved -= count;
      }
      for (const message of messages) this.#accept(message);
    }
  }

  #accept(message: Message): void {
    const { topic, settings } = this.#spec;
    const queueUrl = this.#queueUrl;
    const receiptHandle = message.ReceiptHandle;
    if (!receiptHandle) return;
    const now = Date.now();
    const lane = this.#spec.ordered ? (message.Attributes?.MessageGroupId ?? undefined) : undefined;
    const messageId = message.MessageId ?? '';
    const held: Held = { queueUrl, messageId, lane, receiptHandle, receivedAt: now, hiddenUntil: now + settings.visibilityTimeoutSec * 1000, settled: false, extending: false };
    if (!this.#open) {
      void this.#parts.visibility.add(queueUrl, { receiptHandle, seconds: 0 }).catch(() => undefined);
      return;
    }
    const decoded = fromWire(message, topic, { key: this.#parts.signingKey, now });
    if (decoded.due !== undefined && decoded.due > now + 50) {
      held.settled = true;
      void this.#reschedule(held, decoded.envelope, decoded.due, decoded.priorAttempts, 0);
      return;
    }
    const receiveCount = Number(message.Attributes?.ApproximateReceiveCount ?? '1');
    const received = Number.isFinite(receiveCount) && receiveCount > 0 ? receiveCount : 1;
    const attempt = Math.max(1, decoded.priorAttempts + received - (this.#givenBack.get(messageId) ?? 0));
    this.#held.add(held);
    const delivery: DriverDelivery = {
      envelope: decoded.envelope,
      attempt,
      orderingKey: held.lane ?? decoded.envelope.key,
      meta: { queue: queueUrl.slice(queueUrl.lastIndexOf('/') + 1), messageId: message.MessageId ?? '' },
      ack: () =>
        this.#settle(held, 'ack', async () => {
          await this.#parts.deletes.add(queueUrl, receiptHandle);
          this.#givenBack.delete(messageId);
        }),
      nack: (delayMs) => this.#settle(held, 'nack', () => this.#nack(held, decoded.envelope, attempt, delayMs)),
    };
    if (lane === undefined) {
      this.#sink.deliver(delivery);
      return;
    }
    if (!this.#activeLanes.has(lane)) {
      this.#activeLanes.add(lane);
      this.#sink.deliver(delivery);
      return;
    }
    const queue = this.#waiting.get(lane) ?? [];
    queue.push(() => this.#sink.deliver(delivery));
    this.#waiting.set(lane, queue);
    this.#pendingRelease.set(held, lane);
  }

  /** Ordered mode: messages held back per lane, so a nack can release them. */
  readonly #pendingRelease = new Map<Held, string>();

  /**
   * Ordered mode: per SQS MessageId, receives given back without reaching a handler (held behind
   * a nacked message of their lane). SQS counts them in ApproximateReceiveCount; they are not
   * attempts, or a successor of a message retried maxAttempts times would arrive past maxAttempts
   * and be dead-lettered unhandled. Kept per driver (a subscription closed and opened again
   * still knows), in this process only (another process sees the raw count), bounded, forgotten
   * when the message is acked.
   */
  get #givenBack(): Map<string, number> {
    return this.#parts.givenBack;
  }

  #countGivenBack(messageId: string): void {
    if (messageId === '') return;
    this.#givenBack.set(messageId, (this.#givenBack.get(messageId) ?? 0) + 1);
    if (this.#givenBack.size > MAX_GIVEN_BACK) this.#givenBack.delete(this.#givenBack.keys().next().value!);
  }

  /** Ordered mode: the lane's current delivery was settled; pass on the next or release the rest. */
  #laneSettled(lane: string, outcome: 'ack' | 'nack'): void {
    const queue = this.#waiting.get(lane);
    if (outcome === 'ack' && queue && queue.length > 0) {
      const next = queue.shift()!;
      if (queue.length === 0) this.#waiting.delete(lane);
      for (const [held, l] of this.#pendingRelease) {
        if (l === lane) {
          this.#pendingRelease.delete(held);
          break;
        }
      }
      next();
      return;
    }
    this.#waiting.delete(lane);
    this.#activeLanes.delete(lane);
    for (const [held, l] of [...this.#pendingRelease]) {
      if (l !== lane) continue;
      this.#pendingRelease.delete(held);
      held.settled = true;
      this.#held.delete(held);
      this.#countGivenBack(held.messageId);
      void this.#parts.visibility.add(held.queueUrl, { receiptHandle: held.receiptHandle, seconds: 0 }).catch((err: unknown) => {
        this.#parts.logger.warn({ err, topic: this.#spec.topic }, 'could not release a held-back FIFO message; it returns after its visibility timeout');
      });
    }
    this.#wake();
  }

  async #settle(held: Held, outcome: 'ack' | 'nack', action: () => Promise<void>): Promise<void> {
    if (!this.#open) throw new MqError('CLOSED', 'subscription is closed; the message will be redelivered');
    if (held.settled) throw new MqError('INVALID_MESSAGE', 'delivery already settled');
    held.settled = true;
    this.#held.delete(held);
    try {
      await action();
    } finally {
      // After the broker saw the settle: for a nack, the message must be hidden before its
      // successors are released, or SQS could hand a successor out first.
      if (held.lane !== undefined) this.#laneSettled(held.lane, outcome);
      this.#wake();
    }
  }

  async #nack(held: Held, envelope: DriverDelivery['envelope'], attempt: number, delayMs: number): Promise<void> {
    const elapsed = Date.now() - held.receivedAt;
    if (delayMs + elapsed <= MAX_HIDDEN_MS - HIDDEN_MARGIN_MS) {
      // Whole seconds, and at least one: a nack(0) made visible at once would let an
      // always-nacking handler spin each message through the broker hundreds of times a second
      // (measured ~780 deliveries/s for 50 messages, a third of a core in SDK calls), starving
      // timers on a busy host. One second matches RocketMQ's shortest give-back.
      await this.#parts.visibility.add(held.queueUrl, { receiptHandle: held.receiptHandle, seconds: Math.max(MIN_NACK_SECONDS, Math.ceil(delayMs / 1000)) });
      return;
    }
    if (held.queueUrl.endsWith('.fifo')) throw new MqError('UNSUPPORTED', 'FIFO queues cannot delay a redelivery beyond 12 hours');
    await this.#reschedule(held, envelope, Date.now() + delayMs, attempt, attempt);
  }

  /**
   * Re-sends a copy with up to 15 minutes of DelaySeconds and the due time inside, then deletes
   * the original: the copy is durable before the original goes, so a crash can duplicate but not
   * lose it.
   */
  async #reschedule(held: Held, envelope: DriverDelivery['envelope'], due: number, priorAttempts: number, hop: number): Promise<void> {
    const seconds = Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.ceil((due - Date.now()) / 1000)));
    const wire = toWire(envelope, { due, attempts: priorAttempts }, this.#parts.signingKey, { binaryAttribute: true });
    try {
      await this.#parts.sender.sendToQueue(held.queueUrl, envelope, wire, seconds, hop);
      await this.#parts.deletes.add(held.queueUrl, held.receiptHandle);
    } catch (err) {
      this.#parts.logger.warn({ err, id: envelope.id, topic: this.#spec.topic }, 're-scheduling a delayed message failed; it returns after its visibility timeout');
      if (hop > 0) throw err;
    }
  }

  #beat(): void {
    const { visibilityTimeoutSec } = this.#spec.settings;
    const now = Date.now();
    const window = visibilityTimeoutSec * 1000;
    for (const held of this.#held) {
      if (held.settled || held.extending || held.hiddenUntil - now > (window * 2) / 3) continue;
      const left = MAX_HIDDEN_MS - HIDDEN_MARGIN_MS - (now - held.receivedAt);
      const seconds = Math.min(visibilityTimeoutSec, Math.floor(left / 1000));
      if (seconds <= 0) continue;
      held.extending = true;
      this.#parts.visibility
        .add(held.queueUrl, { receiptHandle: held.receiptHandle, seconds })
        .then(() => {
          if (!held.settled) held.hiddenUntil = now + seconds * 1000;
        })
        .catch((err: unknown) => {
          if (!held.settled) this.#parts.logger.warn({ err, topic: this.#spec.topic }, 'visibility heartbeat failed; the message may be redelivered');
        })
        .finally(() => {
          held.extending = false;
        });
    }
  }
}
