/**
 * The send path: envelopes → SendMessageBatch (queue mode) or PublishBatch (SNS mode), at most
 * 10 entries and 256 KiB per call, each envelope settled by its own entry.
 * Nothing is retried here; core's reliable sender retries what comes back `retryable`.
 */
import { PublishBatchCommand, type PublishBatchRequestEntry, type SNSClient } from '@aws-sdk/client-sns';
import { SendMessageBatchCommand, type SendMessageBatchRequestEntry, type SQSClient } from '@aws-sdk/client-sqs';
import { MqError, type Envelope, type SendOutcome } from '@mqkit/core/driver';
import { chunkEntries, settleEntries } from './batch-entries.ts';
import { classifyAwsError } from './errors.ts';
import { isFifo, nativeTopicName, topicQueueName } from './names.ts';
import type { Topology } from './topology.ts';
import { dedupId, messageGroupId, toWire, type WireMessage } from './wire.ts';

/** Longest DelaySeconds SQS takes; longer delays are re-sent by the consumer until due. */
export const MAX_DELAY_SECONDS = 900;

export interface SenderSettings {
  readonly sns: boolean;
  readonly maxMessageBytes: number;
  readonly requestTimeoutMs: number;
}

/** One envelope prepared for the wire, or refused before sending. */
interface Prepared {
  readonly index: number;
  readonly envelope: Envelope;
  readonly wire: WireMessage;
  readonly delaySeconds: number;
}

export class Sender {
  readonly #sqs: SQSClient;
  readonly #sns: SNSClient | undefined;
  readonly #topology: Topology;
  readonly #settings: SenderSettings;

  constructor(sqs: SQSClient, sns: SNSClient | undefined, topology: Topology, settings: SenderSettings) {
    this.#sqs = sqs;
    this.#sns = sns;
    this.#topology = topology;
    this.#settings = settings;
  }

  async send(envelopes: readonly Envelope[]): Promise<SendOutcome[]> {
    const outcomes: SendOutcome[] = new Array<SendOutcome>(envelopes.length);
    const byTopic = new Map<string, Prepared[]>();
    envelopes.forEach((envelope, index) => {
      const prepared = this.#prepare(envelope, index);
      if (prepared instanceof MqError) {
        outcomes[index] = { ok: false, error: prepared };
        return;
      }
      let list = byTopic.get(envelope.topic);
      if (!list) {
        list = [];
        byTopic.set(envelope.topic, list);
      }
      list.push(prepared);
    });
    await Promise.all([...byTopic].map(([topic, list]) => this.#sendTopic(topic, list, outcomes)));
    return outcomes;
  }

  /** Sends one message to a queue directly (consumer-side re-scheduling), resolving when accepted. */
  async sendToQueue(queueUrl: string, envelope: Envelope, wire: WireMessage, delaySeconds: number, hop: number): Promise<void> {
    const entry: SendMessageBatchRequestEntry = {
      Id: '0',
      MessageBody: wire.body,
      MessageAttributes: wire.attributes,
      ...(delaySeconds > 0 ? { DelaySeconds: delaySeconds } : {}),
    };
    if (queueUrl.endsWith('.fifo')) {
      entry.MessageGroupId = messageGroupId(envelope);
      entry.MessageDeduplicationId = dedupId(envelope.id, hop);
    }
    const [error] = await this.#sendQueueChunk(queueUrl, [entry], 'SendMessageBatch (re-schedule)');
    if (error) throw error;
  }

  #prepare(envelope: Envelope, index: number): Prepared | MqError {
    const delayMs = envelope.delayMs ?? 0;
    const fifo = isFifo(envelope.topic);
    const details = { topic: envelope.topic, id: envelope.id };
    if (delayMs > 0 && fifo) {
      return new MqError('UNSUPPORTED', 'SQS FIFO queues and SNS FIFO topics do not delay single messages', { details });
    }
    let delaySeconds = 0;
    let due: number | undefined;
    if (delayMs > 0) {
      const wanted = Math.ceil(delayMs / 1000);
      if (this.#settings.sns) {
        // SNS has no delay: the consumer re-sends it to its group queue with DelaySeconds.
        due = Date.now() + delayMs;
      } else if (wanted <= MAX_DELAY_SECONDS) {
        delaySeconds = wanted;
      } else {
        delaySeconds = MAX_DELAY_SECONDS;
        due = Date.now() + delayMs;
      }
    }
    // Binary bodies go raw in a Binary attribute to SQS; SNS gets them base64 (see WireOptions).
    const wire = toWire(envelope, { due }, undefined, { binaryAttribute: !this.#settings.sns });
    if (wire.size > this.#settings.maxMessageBytes) {
      return new MqError('TOO_LARGE', `message of ${wire.size} bytes on the wire exceeds the limit of ${this.#settings.maxMessageBytes} bytes`, {
        details: { ...details, size: wire.size, limit: this.#settings.maxMessageBytes },
      });
    }
    return { index, envelope, wire, delaySeconds };
  }

  async #sendTopic(topic: string, list: Prepared[], outcomes: SendOutcome[]): Promise<void> {
    const fifo = isFifo(topic);
    let target: string;
    try {
      target = this.#settings.sns ? await this.#topology.topicArn(nativeTopicName(topic), fifo) : await this.#topology.queueUrl(topicQueueName(topic), fifo);
    } catch (err) {
      const error = classifyAwsError(err, `resolving ${topic}`);
      for (const p of list) outcomes[p.index] = { ok: false, error };
      return;
    }
    const native = this.#settings.sns ? nativeTopicName(topic) : topicQueueName(topic);
    await Promise.all(
      chunkEntries(list).map(async (chunk) => {
        const results = this.#settings.sns ? await this.#publishChunk(target, chunk, fifo) : await this.#sendChunk(target, chunk, fifo);
        chunk.forEach((p, i) => {
          outcomes[p.index] = this.#afterMissing(native, results[i]!);
        });
      }),
    );
  }

  /**
   * A queue or topic that vanished after it was resolved (deleted, or an emulator restarted
   * without it): when declaring, forget the cached address and let core retry, which re-creates it.
   */
  #afterMissing(native: string, outcome: SendOutcome): SendOutcome {
    if (outcome.ok || outcome.error.code !== 'NOT_FOUND' || !this.#topology.declares) return outcome;
    this.#topology.forget(native);
    const { error } = outcome;
    return { ok: false, error: new MqError('NOT_FOUND', `${error.message} (re-declaring it)`, { cause: error, details: error.details, retryable: true }) };
  }

  async #sendChunk(queueUrl: string, chunk: Prepared[], fifo: boolean): Promise<SendOutcome[]> {
    const entries = chunk.map((p, i): SendMessageBatchRequestEntry => ({
      Id: String(i),
      MessageBody: p.wire.body,
      MessageAttributes: p.wire.attributes,
      ...(p.delaySeconds > 0 ? { DelaySeconds: p.delaySeconds } : {}),
      ...(fifo ? { MessageGroupId: messageGroupId(p.envelope), MessageDeduplicationId: dedupId(p.envelope.id) } : {}),
    }));
    const receipts: Array<string | undefined> = [];
    const errors = await this.#sendQueueChunk(queueUrl, entries, `SendMessageBatch to ${queueUrl.slice(queueUrl.lastIndexOf('/') + 1)}`, receipts);
    return errors.map((error, i) => (error ? { ok: false, error } : { ok: true, receipt: receipts[i] }));
  }

  async #sendQueueChunk(queueUrl: string, entries: SendMessageBatchRequestEntry[], what: string, receipts: Array<string | undefined> = []): Promise<Array<MqError | undefined>> {
    let response;
    try {
      response = await this.#sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }), {
        abortSignal: AbortSignal.timeout(this.#settings.requestTimeoutMs),
      });
    } catch (err) {
      const error = classifyAwsError(err, what);
      return entries.map(() => error);
    }
    return settleEntries(entries.length, response.Successful, response.Failed, what, receipts);
  }

  async #publishChunk(topicArn: string, chunk: Prepared[], fifo: boolean): Promise<SendOutcome[]> {
    const sns = this.#sns;
    if (!sns) throw new MqError('INTERNAL', 'SNS client missing in SNS mode');
    const entries = chunk.map((p, i): PublishBatchRequestEntry => ({
      Id: String(i),
      Message: p.wire.body,
      MessageAttributes: p.wire.attributes,
      ...(fifo ? { MessageGroupId: messageGroupId(p.envelope), MessageDeduplicationId: dedupId(p.envelope.id) } : {}),
    }));
    const what = `PublishBatch to ${topicArn.slice(topicArn.lastIndexOf(':') + 1)}`;
    let response;
    try {
      response = await sns.send(new PublishBatchCommand({ TopicArn: topicArn, PublishBatchRequestEntries: entries }), {
        abortSignal: AbortSignal.timeout(this.#settings.requestTimeoutMs),
      });
    } catch (err) {
      const error = classifyAwsError(err, what);
      return chunk.map(() => ({ ok: false, error }));
    }
    const receipts: Array<string | undefined> = [];
    const errors = settleEntries(entries.length, response.Successful, response.Failed, what, receipts);
    return errors.map((error, i) => (error ? { ok: false, error } : { ok: true, receipt: receipts[i] }));
  }
}
