/**
 * Resolves and (unless `declare` is off) idempotently declares queues, topics, subscriptions and
 * redrive policies. Results are cached per name; a failed lookup is not cached, so the next call
 * tries again.
 */
import { CreateTopicCommand, ListSubscriptionsByTopicCommand, SetSubscriptionAttributesCommand, type SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, GetQueueUrlCommand, SetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { MqError } from '@mqkit/core/driver';
import { classifyAwsError, classifyDeclareError } from './errors.ts';
import { SQS_MAX_BYTES } from './options.ts';

export interface TopologySettings {
  readonly declare: boolean;
  readonly region: string;
  readonly accountId?: string | undefined;
  readonly requestTimeoutMs: number;
}

/** What a group queue on an SNS topic is declared with. */
export interface GroupQueueSpec {
  readonly topicName: string;
  readonly queueName: string;
  readonly fifo: boolean;
  readonly filterPolicy?: Readonly<Record<string, unknown>> | undefined;
  readonly filterPolicyScope: 'MessageAttributes' | 'MessageBody';
}

export class Topology {
  readonly #sqs: SQSClient;
  readonly #sns: SNSClient | undefined;
  readonly #settings: TopologySettings;
  readonly #queueUrls = new Map<string, Promise<string>>();
  readonly #queueArns = new Map<string, Promise<string>>();
  readonly #topicArns = new Map<string, Promise<string>>();
  readonly #subscribed = new Map<string, Promise<void>>();

  constructor(sqs: SQSClient, sns: SNSClient | undefined, settings: TopologySettings) {
    this.#sqs = sqs;
    this.#sns = sns;
    this.#settings = settings;
  }

  #signal(): AbortSignal {
    return AbortSignal.timeout(this.#settings.requestTimeoutMs);
  }

  #cached<T>(cache: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
    let found = cache.get(key);
    if (!found) {
      found = make();
      cache.set(key, found);
      found.catch(() => cache.delete(key));
    }
    return found;
  }

  /** URL of the queue named `name` (native name), created when declaring. */
  queueUrl(name: string, fifo: boolean): Promise<string> {
    return this.#cached(this.#queueUrls, name, async () => {
      try {
        if (this.#settings.declare) return await this.#createQueue(name, fifo);
        const r = await this.#sqs.send(new GetQueueUrlCommand({ QueueName: name }), { abortSignal: this.#signal() });
        if (!r.QueueUrl) throw new MqError('NOT_FOUND', `queue ${name} not found`);
        return r.QueueUrl;
      } catch (err) {
        throw classifyDeclareError(err, `${this.#settings.declare ? 'CreateQueue' : 'GetQueueUrl'} ${name}`);
      }
    });
  }

  /**
   * Creates the queue with SQS's largest message size (the default of queues made before August
   * 2025 is 256 KiB, below what the adapter's capability promises in queue mode). CreateQueue
   * refuses (QueueNameExists) a queue that exists with another value of an attribute it is given:
   * such a queue (made by an earlier mqkit, or by hand) is used, and its limit raised to 1 MiB as
   * its redrive policy is set, since the adapter lets messages up to 1 MiB through to it.
   */
  async #createQueue(name: string, fifo: boolean): Promise<string> {
    const attributes: Record<string, string> = { MaximumMessageSize: String(SQS_MAX_BYTES), ...(fifo ? { FifoQueue: 'true' } : {}) };
    let url: string | undefined;
    try {
      url = (await this.#sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }), { abortSignal: this.#signal() })).QueueUrl;
    } catch (err) {
      if (!isQueueExists(err)) throw err;
      try {
        url = (await this.#sqs.send(new GetQueueUrlCommand({ QueueName: name }), { abortSignal: this.#signal() })).QueueUrl;
      } catch (inner) {
        throw classifyDeclareError(inner, `GetQueueUrl ${name}`);
      }
      if (!url) throw new MqError('INTERNAL', `GetQueueUrl ${name} returned no QueueUrl`);
      try {
        await this.#sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { MaximumMessageSize: String(SQS_MAX_BYTES) } }), { abortSignal: this.#signal() });
      } catch (inner) {
        throw classifyDeclareError(inner, `SetQueueAttributes MaximumMessageSize ${name}`);
      }
    }
    if (!url) throw new MqError('INTERNAL', `CreateQueue ${name} returned no QueueUrl`);
    return url;
  }

  /**
   * Forgets what is cached for a queue or topic name, so the next use resolves (and, when
   * declaring, creates) it again: after a queue was deleted, or an emulator lost it.
   */
  forget(name: string): void {
    this.#queueUrls.delete(name);
    this.#topicArns.delete(name);
  }

  /**
   * Forgets every cached address and declaration, so that declaring again really re-creates what
   * vanished (all declarations are idempotent, so redoing the rest is harmless).
   */
  forgetAll(): void {
    this.#queueUrls.clear();
    this.#queueArns.clear();
    this.#topicArns.clear();
    this.#subscribed.clear();
  }

  /** Whether missing queues and topics are created on use. */
  get declares(): boolean {
    return this.#settings.declare;
  }

  /** ARN of a queue, from its URL. */
  queueArn(url: string): Promise<string> {
    return this.#cached(this.#queueArns, url, async () => {
      try {
        const r = await this.#sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }), { abortSignal: this.#signal() });
        const arn = r.Attributes?.QueueArn;
        if (!arn) throw new MqError('INTERNAL', 'GetQueueAttributes returned no QueueArn');
        return arn;
      } catch (err) {
        throw classifyAwsError(err, 'GetQueueAttributes QueueArn');
      }
    });
  }

  /** ARN of the SNS topic named `name` (native name), created when declaring. */
  topicArn(name: string, fifo: boolean): Promise<string> {
    return this.#cached(this.#topicArns, name, async () => {
      const sns = this.#requireSns();
      if (!this.#settings.declare) {
        if (!this.#settings.accountId) throw new MqError('CONFIG', 'sqs: with declare=false and SNS, accountId is needed to address topics');
        return `arn:aws:sns:${this.#settings.region}:${this.#settings.accountId}:${name}`;
      }
      try {
        const attributes: Record<string, string> = fifo ? { FifoTopic: 'true', ContentBasedDeduplication: 'false' } : {};
        const r = await sns.send(new CreateTopicCommand({ Name: name, Attributes: attributes }), { abortSignal: this.#signal() });
        if (!r.TopicArn) throw new MqError('INTERNAL', `CreateTopic ${name} returned no TopicArn`);
        return r.TopicArn;
      } catch (err) {
        throw classifyDeclareError(err, `CreateTopic ${name}`);
      }
    });
  }

  /**
   * Declares (when declaring) the redrive policy of `queueUrl` towards `deadLetterUrl`, or removes
   * it when `maxReceiveCount` is undefined (a retry policy beyond SQS's 1,000 receives: core
   * dead-letters by itself). The policy belongs to the queue, so a queue declared before with
   * another policy gets this one (the latest subscriber's retry policy wins); the policy found
   * before is returned when it differed, for the caller to log.
   */
  async redrive(queueUrl: string, deadLetterUrl: string, maxReceiveCount: number | undefined): Promise<{ previous: string } | undefined> {
    if (!this.#settings.declare) return undefined;
    const deadLetterTargetArn = await this.queueArn(deadLetterUrl);
    const wanted = maxReceiveCount === undefined ? '' : JSON.stringify({ deadLetterTargetArn, maxReceiveCount });
    let previous: string;
    try {
      const r = await this.#sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['RedrivePolicy'] }), { abortSignal: this.#signal() });
      previous = r.Attributes?.RedrivePolicy ?? '';
    } catch (err) {
      throw classifyDeclareError(err, 'GetQueueAttributes RedrivePolicy');
    }
    if (samePolicy(previous, wanted)) return undefined;
    try {
      await this.#sqs.send(new SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: { RedrivePolicy: wanted } }), { abortSignal: this.#signal() });
    } catch (err) {
      const error = classifyDeclareError(err, 'SetQueueAttributes RedrivePolicy');
      if (wanted !== '' || error.code !== 'CONFIG') throw error;
      // AWS removes a policy set to "", ElasticMQ refuses to. Kept, it would dead-letter before
      // the retry policy does: refuse the subscription rather than cap it silently.
      throw new MqError(
        'CONFIG',
        `sqs: queue ${queueUrl.slice(queueUrl.lastIndexOf('/') + 1)} has a redrive policy (${previous}) that would dead-letter before retry.maxAttempts, and it could not be removed (${error.message}); remove it, or lower retry.maxAttempts to 998 or less`,
        { cause: err, details: error.details },
      );
    }
    return previous === '' ? undefined : { previous };
  }

  /**
   * The queue of one consumer group on an SNS topic: declared, allowed to receive from the topic,
   * and subscribed with raw message delivery (and the filter policy, if any). Returns its URL.
   */
  async groupQueue(spec: GroupQueueSpec): Promise<string> {
    const [topicArn, url] = await Promise.all([this.topicArn(spec.topicName, spec.fifo), this.queueUrl(spec.queueName, spec.fifo)]);
    if (!this.#settings.declare) return url;
    const key = `${topicArn}\n${url}\n${JSON.stringify(spec.filterPolicy ?? null)}`;
    await this.#cached(this.#subscribed, key, () => this.#subscribe(topicArn, url, spec));
    return url;
  }

  async #subscribe(topicArn: string, url: string, spec: GroupQueueSpec): Promise<void> {
    const sns = this.#requireSns();
    const queueArn = await this.queueArn(url);
    const policy = {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'mqkit-sns-fanout',
          Effect: 'Allow',
          Principal: { Service: 'sns.amazonaws.com' },
          Action: 'sqs:SendMessage',
          Resource: queueArn,
          Condition: { ArnEquals: { 'aws:SourceArn': topicArn } },
        },
      ],
    };
    try {
      await this.#sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { Policy: JSON.stringify(policy) } }), { abortSignal: this.#signal() });
    } catch (err) {
      throw classifyDeclareError(err, 'SetQueueAttributes Policy');
    }
    const attributes: Record<string, string> = { RawMessageDelivery: 'true' };
    if (spec.filterPolicy) {
      attributes.FilterPolicy = JSON.stringify(spec.filterPolicy);
      attributes.FilterPolicyScope = spec.filterPolicyScope;
    }
    try {
      await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: queueArn, Attributes: attributes, ReturnSubscriptionArn: true }), {
        abortSignal: this.#signal(),
      });
    } catch (err) {
      // An existing subscription with other attributes (e.g. a changed filter policy): update it.
      const name = (err as { name?: string }).name ?? '';
      if (!/InvalidParameter/.test(name)) throw classifyDeclareError(err, 'Subscribe');
      const arn = await this.#findSubscription(topicArn, queueArn);
      if (!arn) throw classifyDeclareError(err, 'Subscribe');
      for (const [AttributeName, AttributeValue] of Object.entries(attributes)) {
        try {
          await sns.send(new SetSubscriptionAttributesCommand({ SubscriptionArn: arn, AttributeName, AttributeValue }), { abortSignal: this.#signal() });
        } catch (inner) {
          throw classifyDeclareError(inner, `SetSubscriptionAttributes ${AttributeName}`);
        }
      }
    }
  }

  async #findSubscription(topicArn: string, queueArn: string): Promise<string | undefined> {
    const sns = this.#requireSns();
    let NextToken: string | undefined;
    do {
      const r = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topicArn, NextToken }), { abortSignal: this.#signal() });
      const found = r.Subscriptions?.find((s) => s.Endpoint === queueArn);
      if (found?.SubscriptionArn) return found.SubscriptionArn;
      NextToken = r.NextToken;
    } while (NextToken);
    return undefined;
  }

  #requireSns(): SNSClient {
    if (!this.#sns) throw new MqError('INTERNAL', 'SNS client used in queue mode');
    return this.#sns;
  }
}

/** Whether two RedrivePolicy values say the same (SQS may return numbers as strings). */
function samePolicy(a: string, b: string): boolean {
  if (a === b) return true;
  if (a === '' || b === '') return false;
  try {
    const x = JSON.parse(a) as Record<string, unknown>;
    const y = JSON.parse(b) as Record<string, unknown>;
    return x.deadLetterTargetArn === y.deadLetterTargetArn && Number(x.maxReceiveCount) === Number(y.maxReceiveCount);
  } catch {
    return false;
  }
}

/** Names under which SQS reports that a queue exists with other attribute values (JSON and query protocols). */
const QUEUE_EXISTS = new Set(['QueueNameExists', 'QueueAlreadyExists', 'AWS.SimpleQueueService.QueueNameExists']);

function isQueueExists(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { name, Code, code } = err as { name?: unknown; Code?: unknown; code?: unknown };
  return [name, Code, code].some((n) => typeof n === 'string' && QUEUE_EXISTS.has(n));
}
