/**
 * Operations (`mqkit dlq`, `mqkit lag`) on SQS/SNS, with clients of their own.
 *
 * Where dead letters are (driver.ts, declare.ts): in SNS mode the dead-letter topic D is an SNS
 * topic and each group that subscribes keeps its own queue on it, `D__<group>` (also its redrive
 * target); every dead letter of D reaches every one of those queues (fan-out), so a group's
 * queue also holds copies of other groups' dead letters, told apart by `x-mqkit-original-group`.
 * The CLI picks the queue by `--group` (or the only one there is). In queue mode (`sns=false`) D
 * is the queue D.
 *
 * SQS has no browse: a read receives with a visibility timeout and gives back with a zero
 * visibility (`hold`: each read counts in ApproximateReceiveCount; these queues have no redrive,
 * so nothing moves). Remove deletes by receipt handle. Backlog is ApproximateNumberOfMessages
 * (ready) + NotVisible (in flight) + Delayed: approximate, as SQS says.
 */
import { ListTopicsCommand, SNSClient } from '@aws-sdk/client-sns';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import { MqError, type BacklogRow, type DriverOps, type MessageBatch, type OpsAdapter, type StoredMessage } from '@mqkit/core/driver';
import { SQS_BATCH_LIMIT } from './batch-entries.ts';
import { classifyAwsError, classifyBatchFailure } from './errors.ts';
import { groupQueueName, nativeTopicName, topicQueueName } from './names.ts';
import { parseConnection, type SqsSettings } from './options.ts';
import { fromWire } from './wire.ts';

/** How long a read keeps messages invisible to others at most (given back at release). */
const HOLD_SECONDS = 300;
/** Separator of a group queue's name (names.ts groupQueueName). */
const GROUP_SEPARATOR = '__';

/** The SQS adapter's operations, for the same URLs and options as {@link sqs}. */
export function ops(): OpsAdapter {
  return {
    schemes: ['sqs'],
    async create(url, options) {
      return new SqsOps(parseConnection(url, options));
    },
  };
}

interface QueueCounts {
  ready: number;
  inFlight: number;
  delayed: number;
}

class SqsOps implements DriverOps {
  readonly name = 'sqs';
  readonly capabilities = { read: 'hold', remove: 'any', listTopics: true, listGroups: true } as const;
  readonly #settings: SqsSettings;
  readonly #sqs: SQSClient;
  readonly #sns: SNSClient | undefined;

  constructor(settings: SqsSettings) {
    this.#settings = settings;
    const common = { region: settings.region, maxAttempts: settings.sdkMaxAttempts, ...(settings.credentials ? { credentials: settings.credentials } : {}) };
    this.#sqs = new SQSClient({ ...common, ...(settings.endpoint ? { endpoint: settings.endpoint } : {}) });
    const snsEndpoint = settings.snsEndpoint ?? settings.endpoint;
    this.#sns = settings.sns ? new SNSClient({ ...common, ...(snsEndpoint ? { endpoint: snsEndpoint } : {}) }) : undefined;
  }

  #signal(): AbortSignal {
    return AbortSignal.timeout(this.#settings.requestTimeoutMs);
  }

  async #call<T>(what: string, send: (signal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      return await send(this.#signal());
    } catch (err) {
      throw classifyAwsError(err, what);
    }
  }

  async #queueUrl(name: string): Promise<string> {
    const r = await this.#call(`GetQueueUrl ${name}`, (abortSignal) => this.#sqs.send(new GetQueueUrlCommand({ QueueName: name }), { abortSignal }));
    if (!r.QueueUrl) throw new MqError('NOT_FOUND', `queue ${name} does not exist`);
    return r.QueueUrl;
  }

  async #queueNames(prefix: string): Promise<string[]> {
    const names: string[] = [];
    let NextToken: string | undefined;
    do {
      const r = await this.#call('ListQueues', (abortSignal) => this.#sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix, NextToken, MaxResults: 1000 }), { abortSignal }));
      for (const url of r.QueueUrls ?? []) names.push(url.slice(url.lastIndexOf('/') + 1));
      NextToken = r.NextToken;
    } while (NextToken);
    return names.filter((n) => n.startsWith(prefix)).sort();
  }

  /** `<topic>__` without `.fifo`: what the group queues of `topic` start with. */
  #groupPrefix(topic: string): string {
    const name = groupQueueName(topic, 'x');
    return name.slice(0, name.lastIndexOf(GROUP_SEPARATOR) + GROUP_SEPARATOR.length);
  }

  /** The queue that keeps `topic`'s messages for `group` (see the module comment). */
  async #storeQueue(topic: string, group: string | undefined): Promise<string> {
    if (!this.#settings.sns) return this.#queueUrl(topicQueueName(topic));
    if (group !== undefined) return this.#queueUrl(groupQueueName(topic, group));
    const prefix = this.#groupPrefix(topic);
    const queues = await this.#queueNames(prefix);
    if (queues.length === 0) throw new MqError('NOT_FOUND', `no group queue (${prefix}<group>) keeps topic "${topic}"`, { details: { topic } });
    if (queues.length > 1) {
      const groups = queues.map((q) => q.slice(prefix.length).replace(/\.fifo$/, ''));
      throw new MqError('CONFIG', `each group keeps its own copy of "${topic}" on SQS: pass --group (one of ${groups.join(', ')})`, { details: { topic } });
    }
    return this.#queueUrl(queues[0]!);
  }

  async #counts(url: string): Promise<QueueCounts> {
    const r = await this.#call('GetQueueAttributes', (abortSignal) =>
      this.#sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'] }),
        { abortSignal },
      ),
    );
    const n = (name: string): number => Number(r.Attributes?.[name as keyof typeof r.Attributes] ?? 0) || 0;
    return { ready: n('ApproximateNumberOfMessages'), inFlight: n('ApproximateNumberOfMessagesNotVisible'), delayed: n('ApproximateNumberOfMessagesDelayed') };
  }

  async listTopics(): Promise<readonly string[]> {
    if (!this.#sns) return this.#queueNames('');
    const sns = this.#sns;
    const names: string[] = [];
    let NextToken: string | undefined;
    do {
      const r = await this.#call('ListTopics', (abortSignal) => sns.send(new ListTopicsCommand({ NextToken }), { abortSignal }));
      for (const t of r.Topics ?? []) if (t.TopicArn) names.push(t.TopicArn.slice(t.TopicArn.lastIndexOf(':') + 1));
      NextToken = r.NextToken;
    } while (NextToken);
    return names;
  }

  async depth(topic: string, group?: string): Promise<number> {
    const c = await this.#counts(await this.#storeQueue(topic, group));
    return c.ready + c.inFlight + c.delayed;
  }

  async read(topic: string, limit: number, group?: string): Promise<MessageBatch> {
    const url = await this.#storeQueue(topic, group);
    const held = new Map<StoredMessage, Message>();
    let idle = 0;
    try {
      while (held.size < limit && idle < 2) {
        // Its own deadline: a receive may wait a second on top of the request timeout.
        const r = await this.#call('ReceiveMessage', () =>
          this.#sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: url,
              MaxNumberOfMessages: Math.min(SQS_BATCH_LIMIT, limit - held.size),
              // Short polls sample a subset of servers: one short wait before calling it empty.
              WaitTimeSeconds: idle,
              VisibilityTimeout: HOLD_SECONDS,
              MessageAttributeNames: ['All'],
              MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp', 'MessageGroupId'],
            }),
            { abortSignal: AbortSignal.timeout(this.#settings.requestTimeoutMs + idle * 1000) },
          ),
        );
        const got = r.Messages ?? [];
        idle = got.length === 0 ? idle + 1 : 0;
        for (const m of got) held.set({ envelope: fromWire(m, topic).envelope, position: m.MessageId }, m);
      }
    } catch (err) {
      await this.#changeVisibility(url, [...held.values()]).catch(() => {});
      throw err;
    }
    let released = false;
    return {
      messages: [...held.keys()],
      remove: async (some) => {
        const messages = some.map((s) => {
          const m = held.get(s);
          if (!m) throw new MqError('INVALID_MESSAGE', 'remove: a message not read in this batch');
          return m;
        });
        for (let i = 0; i < messages.length; i += SQS_BATCH_LIMIT) {
          const chunk = messages.slice(i, i + SQS_BATCH_LIMIT);
          const r = await this.#call('DeleteMessageBatch', (abortSignal) =>
            this.#sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle })) }), { abortSignal }),
          );
          const failed = r.Failed?.[0];
          if (failed) throw classifyBatchFailure(failed, 'DeleteMessageBatch');
        }
        for (const s of some) held.delete(s);
      },
      release: async () => {
        if (released) return;
        released = true;
        await this.#changeVisibility(url, [...held.values()]);
      },
    };
  }

  /** Makes the messages visible again now. */
  async #changeVisibility(url: string, messages: readonly Message[]): Promise<void> {
    for (let i = 0; i < messages.length; i += SQS_BATCH_LIMIT) {
      const chunk = messages.slice(i, i + SQS_BATCH_LIMIT);
      await this.#call('ChangeMessageVisibilityBatch', (abortSignal) =>
        this.#sqs.send(
          new ChangeMessageVisibilityBatchCommand({ QueueUrl: url, Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 })) }),
          { abortSignal },
        ),
      );
    }
  }

  async purge(topic: string, group?: string): Promise<number> {
    const url = await this.#storeQueue(topic, group);
    const c = await this.#counts(url);
    await this.#call('PurgeQueue', (abortSignal) => this.#sqs.send(new PurgeQueueCommand({ QueueUrl: url }), { abortSignal }));
    // SQS tells no count: what it held just before (approximate).
    return c.ready + c.inFlight + c.delayed;
  }

  async backlog(topic: string | undefined, group: string | undefined): Promise<readonly BacklogRow[]> {
    const targets: Array<{ topic: string; group: string; queue: string }> = [];
    if (!this.#settings.sns) {
      // Queue mode: a topic is one queue, its groups compete on it.
      const names = topic === undefined ? await this.#queueNames('') : [topicQueueName(topic)];
      for (const q of names) targets.push({ topic: topic ?? q, group: group ?? '*', queue: q });
    } else if (topic !== undefined && group !== undefined) {
      targets.push({ topic, group, queue: groupQueueName(topic, group) });
    } else {
      const prefix = topic === undefined ? '' : this.#groupPrefix(topic);
      for (const q of await this.#queueNames(prefix)) {
        const at = q.lastIndexOf(GROUP_SEPARATOR);
        if (at <= 0) continue;
        const g = q.slice(at + GROUP_SEPARATOR.length).replace(/\.fifo$/, '');
        if (group !== undefined && g !== group) continue;
        targets.push({ topic: topic ?? nativeTopicName(q.slice(0, at)), group: g, queue: q });
      }
      if (topic !== undefined && targets.length === 0) throw new MqError('NOT_FOUND', `no group queue (${prefix}<group>) on topic "${topic}"`, { details: { topic } });
    }
    const rows: BacklogRow[] = [];
    for (const t of targets) {
      const c = await this.#counts(await this.#queueUrl(t.queue));
      rows.push({ topic: t.topic, group: t.group, backlog: c.ready + c.inFlight + c.delayed, ready: c.ready + c.delayed, inFlight: c.inFlight });
    }
    return rows;
  }

  async close(): Promise<void> {
    this.#sqs.destroy();
    this.#sns?.destroy();
  }
}
