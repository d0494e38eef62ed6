/**
 * The consume side of one SQS queue on core's pull contract: ReceiveMessage, and settles as batch
 * calls (DeleteMessageBatch to ack, ChangeMessageVisibilityBatch to nack and to extend). Core runs
 * the loops, lanes, batching and heartbeat; what stays here is SQS's own: visibility in whole
 * seconds and at most 12 hours after a receive, re-scheduling of messages delayed beyond SQS's
 * 15 minutes as re-sent copies, and re-declaring a queue that vanished.
 */
import { ChangeMessageVisibilityBatchCommand, DeleteMessageBatchCommand, type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { MqError, toMqError, type DriverReceiver, type Envelope, type Logger, type ReceivedMessage, type SettleResults } from '@mqkit/core/driver';
import { settleEntries, SQS_BATCH_LIMIT } from './batch-entries.ts';
import { classifyAwsError } from './errors.ts';
import type { SqsSubscribeSettings } from './options.ts';
import { MAX_DELAY_SECONDS, type Sender } from './send.ts';
import { fromWire, toWire } from './wire.ts';

/** SQS caps how long a message may stay hidden after one receive. */
export const MAX_HIDDEN_MS = 12 * 3600_000;
/** Shortest redelivery delay of a nack: SQS hides in whole seconds (see {@link SqsReceiver.nack}). */
export const MIN_NACK_SECONDS = 1;
/** Margin kept below {@link MAX_HIDDEN_MS}. */
const HIDDEN_MARGIN_MS = 60_000;

/** A received SQS message: its receipt handle settles it. */
export interface SqsMessage extends ReceivedMessage {
  readonly receiptHandle: string;
  /** When it was received (epoch ms): SQS hides it at most 12 hours from then. */
  readonly receivedAt: number;
}

/** What a receiver shares with its driver. */
export interface ReceiverParts {
  readonly sqs: SQSClient;
  readonly sender: Sender;
  readonly logger: Logger;
  /** Seals the attempt count of re-sent copies (see wire.ts). */
  readonly signingKey: Uint8Array;
  readonly requestTimeoutMs: number;
}

/** What one subscription consumes. */
export interface ReceiverSpec {
  readonly topic: string;
  readonly group: string;
  readonly queueUrl: string;
  readonly maxInFlight: number;
  /** Ordered: each message's FIFO message group is its lane. */
  readonly ordered: boolean;
  /**
   * Declares the queue (and its subscription) again and returns its URL; called when receiving
   * finds the queue gone. Absent when the adapter does not declare.
   */
  readonly redeclare?: (() => Promise<string>) | undefined;
  readonly settings: SqsSubscribeSettings;
}

type VisibilityEntry = readonly [message: SqsMessage, seconds: number];

export class SqsReceiver implements DriverReceiver<SqsMessage> {
  readonly batchSize = SQS_BATCH_LIMIT;
  readonly settleBatchSize = SQS_BATCH_LIMIT;
  readonly concurrency: number;
  readonly leaseMs: number | undefined;
  readonly scope: string;
  readonly #parts: ReceiverParts;
  readonly #spec: ReceiverSpec;
  #queueUrl: string;
  /** Re-schedules of messages received before they were due (see {@link SqsReceiver.receive}). */
  readonly #rescheduling = new Set<Promise<void>>();

  constructor(parts: ReceiverParts, spec: ReceiverSpec) {
    this.#parts = parts;
    this.#spec = spec;
    this.#queueUrl = spec.queueUrl;
    const { settings } = spec;
    // Core keeps one receive open when ordered (not every implementation locks a FIFO group
    // across concurrent receives; moto does not).
    this.concurrency = settings.pollers ?? Math.min(8, Math.max(1, Math.ceil(spec.maxInFlight / SQS_BATCH_LIMIT)));
    this.leaseMs = settings.heartbeat ? settings.visibilityTimeoutSec * 1000 : undefined;
    // The queue URL names the endpoint, the account and the queue: MessageIds are unique there.
    this.scope = `sqs:${spec.queueUrl}\u0000${spec.group}`;
  }

  async receive(max: number, signal: AbortSignal): Promise<readonly SqsMessage[]> {
    const { settings, topic } = this.#spec;
    let messages: Message[];
    try {
      const r = await this.#parts.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.#queueUrl,
          MaxNumberOfMessages: Math.min(SQS_BATCH_LIMIT, Math.max(1, max)),
          WaitTimeSeconds: settings.waitTimeSec,
          VisibilityTimeout: settings.visibilityTimeoutSec,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp', 'MessageGroupId'],
        }),
        { abortSignal: AbortSignal.any([signal, AbortSignal.timeout(settings.waitTimeSec * 1000 + this.#parts.requestTimeoutMs)]) },
      );
      messages = r.Messages ?? [];
    } catch (err) {
      if (signal.aborted) return [];
      const error = classifyAwsError(err, `ReceiveMessage on ${topic}`);
      if (error.code === 'NOT_FOUND' && this.#spec.redeclare) {
        // The queue vanished (deleted, or an emulator restarted without it): declare it again.
        try {
          this.#queueUrl = await this.#spec.redeclare();
        } catch (redeclareError) {
          this.#parts.logger.warn({ err: redeclareError, topic }, 're-declaring a vanished queue failed');
        }
      }
      throw error;
    }
    const now = Date.now();
    const queue = this.#queueUrl.slice(this.#queueUrl.lastIndexOf('/') + 1);
    const received: SqsMessage[] = [];
    for (const message of messages) {
      const receiptHandle = message.ReceiptHandle;
      if (!receiptHandle) continue;
      const decoded = fromWire(message, topic, { key: this.#parts.signingKey, now });
      if (decoded.due !== undefined && decoded.due > now + 50) {
        // Delayed beyond SQS's 15 minutes: sent again with the rest of the delay.
        const rescheduled = this.#reschedule(receiptHandle, decoded.envelope, decoded.due, decoded.priorAttempts, 0).catch(() => undefined);
        this.#rescheduling.add(rescheduled);
        void rescheduled.finally(() => this.#rescheduling.delete(rescheduled));
        continue;
      }
      const count = Number(message.Attributes?.ApproximateReceiveCount ?? '1');
      const messageId = message.MessageId ?? '';
      received.push({
        envelope: decoded.envelope,
        deliveryCount: decoded.priorAttempts + (Number.isFinite(count) && count > 0 ? count : 1),
        id: messageId || receiptHandle,
        orderingKey: this.#spec.ordered ? message.Attributes?.MessageGroupId : undefined,
        meta: { queue, messageId },
        receiptHandle,
        receivedAt: now,
      });
    }
    return received;
  }

  async ack(messages: readonly SqsMessage[]): Promise<SettleResults> {
    const what = `DeleteMessageBatch on ${this.#queueName}`;
    try {
      const r = await this.#parts.sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: this.#queueUrl, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.receiptHandle })) }),
        { abortSignal: AbortSignal.timeout(this.#parts.requestTimeoutMs) },
      );
      return settleEntries(messages.length, r.Successful, r.Failed, what);
    } catch (err) {
      throw classifyAwsError(err, 'DeleteMessageBatch');
    }
  }

  /**
   * Hides each message for `delayMs` in whole seconds, and at least one: a nack(0) made visible
   * at once would let an always-nacking handler spin each message through the broker hundreds of
   * times a second (measured ~780 deliveries/s for 50 messages, a third of a core in SDK calls),
   * starving timers on a busy host. One second matches RocketMQ's shortest give-back, and is what
   * core's give-backs (after a nack in an ordered lane, on close) get too. A delay reaching past
   * 12 hours after the receive is a re-sent copy instead (standard queues only).
   */
  async nack(messages: readonly SqsMessage[], delayMs: number): Promise<SettleResults> {
    const now = Date.now();
    const seconds = Math.max(MIN_NACK_SECONDS, Math.ceil(delayMs / 1000));
    const results: Array<MqError | undefined> = new Array<MqError | undefined>(messages.length).fill(undefined);
    const hide: number[] = [];
    const resend: number[] = [];
    messages.forEach((m, i) => (delayMs + (now - m.receivedAt) <= MAX_HIDDEN_MS - HIDDEN_MARGIN_MS ? hide : resend).push(i));
    await Promise.all([
      this.#changeVisibility(hide.map((i) => [messages[i]!, seconds])).then((r) => hide.forEach((i, j) => (results[i] = r[j]))),
      ...resend.map(async (i) => {
        const m = messages[i]!;
        if (this.#queueUrl.endsWith('.fifo')) {
          results[i] = new MqError('UNSUPPORTED', 'FIFO queues cannot delay a redelivery beyond 12 hours');
          return;
        }
        // The copy carries the attempts made so far (SQS's count of this one included).
        await this.#reschedule(m.receiptHandle, m.envelope, now + delayMs, m.deliveryCount, m.deliveryCount).catch((err: unknown) => (results[i] = toMqError(err)));
      }),
    ]);
    return results;
  }

  /** Hides each message for another `leaseMs`, never past 12 hours after its receive. */
  async extend(messages: readonly SqsMessage[], leaseMs: number): Promise<SettleResults> {
    const now = Date.now();
    const entries: VisibilityEntry[] = [];
    const at: number[] = [];
    messages.forEach((m, i) => {
      const left = MAX_HIDDEN_MS - HIDDEN_MARGIN_MS - (now - m.receivedAt);
      const seconds = Math.min(Math.ceil(leaseMs / 1000), Math.floor(left / 1000));
      if (seconds <= 0) return; // SQS hides it no longer: it comes back when its visibility ends
      entries.push([m, seconds]);
      at.push(i);
    });
    const results: Array<MqError | undefined> = new Array<MqError | undefined>(messages.length).fill(undefined);
    const r = await this.#changeVisibility(entries);
    at.forEach((i, j) => (results[i] = r[j]));
    return results;
  }

  async close(): Promise<void> {
    while (this.#rescheduling.size > 0) await Promise.allSettled([...this.#rescheduling]);
  }

  get #queueName(): string {
    return this.#queueUrl.slice(this.#queueUrl.lastIndexOf('/') + 1);
  }

  /** One ChangeMessageVisibilityBatch; a failed call fails each entry. */
  async #changeVisibility(entries: readonly VisibilityEntry[]): Promise<Array<MqError | undefined>> {
    if (entries.length === 0) return [];
    const what = `ChangeMessageVisibilityBatch on ${this.#queueName}`;
    try {
      const r = await this.#parts.sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: this.#queueUrl,
          Entries: entries.map(([m, seconds], i) => ({ Id: String(i), ReceiptHandle: m.receiptHandle, VisibilityTimeout: seconds })),
        }),
        { abortSignal: AbortSignal.timeout(this.#parts.requestTimeoutMs) },
      );
      return settleEntries(entries.length, r.Successful, r.Failed, what);
    } catch (err) {
      return entries.map(() => classifyAwsError(err, 'ChangeMessageVisibilityBatch'));
    }
  }

  /**
   * Re-sends a copy with up to 15 minutes of DelaySeconds and the due time inside, then deletes
   * the original: the copy is durable before the original goes, so a crash can duplicate but not
   * lose it.
   */
  async #reschedule(receiptHandle: string, envelope: Envelope, due: number, priorAttempts: number, hop: number): Promise<void> {
    const seconds = Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.ceil((due - Date.now()) / 1000)));
    const wire = toWire(envelope, { due, attempts: priorAttempts }, this.#parts.signingKey, { binaryAttribute: true });
    try {
      await this.#parts.sender.sendToQueue(this.#queueUrl, envelope, wire, seconds, hop);
      const [error] = (await this.ack([{ envelope, receiptHandle, receivedAt: 0, deliveryCount: 1, id: '' }])) ?? [];
      if (error) throw error;
    } catch (err) {
      this.#parts.logger.warn({ err, id: envelope.id, topic: this.#spec.topic }, 're-scheduling a delayed message failed; it returns after its visibility timeout');
      throw err;
    }
  }
}
