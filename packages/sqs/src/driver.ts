/**
 * The SQS/SNS driver and the `sqs://` adapter.
 */
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { randomBytes } from 'node:crypto';
import {
  missingTopologyError,
  MqError,
  type Adapter,
  type Capabilities,
  type Driver,
  type DriverContext,
  type DriverReceiver,
  type DriverTopology,
  type Envelope,
  type Logger,
  type MissingTopology,
  type SendOutcome,
  type SubscriptionSpec,
} from '@mqkit/core/driver';
import { sqsTopology } from './declare.ts';
import { groupQueueName, isFifo, nativeTopicName, TOPIC_PATTERN, topicQueueName } from './names.ts';
import { parseConnection, parseSubscription, redriveReceiveCount, SNS_MAX_BYTES, SQS_MAX_BYTES, type SqsSettings } from './options.ts';
import { SqsReceiver, type ReceiverParts } from './receiver.ts';
import { Sender } from './send.ts';
import { Topology } from './topology.ts';
import { MAX_DELAY_MS } from './wire.ts';

/** Longest delay accepted: re-scheduled in 15-minute hops, each a new message, so retention never runs out. */
export { MAX_DELAY_MS };

/** The clients behind a driver, reachable as `driver.native` / `client.native` for what mqkit does not cover. */
export interface SqsNative {
  readonly sqs: SQSClient;
  /** Absent in queue mode (`sns=false`). */
  readonly sns: SNSClient | undefined;
}

/**
 * What the adapter offers, given its mode: `sns` (fan-out; delay emulated by the consumer) or not
 * (delay native up to 15 min, re-scheduled beyond), and the message size limit.
 *
 * `maxMessageBytes` is what any payload can have, binary included: to SQS a binary body goes raw in
 * a Binary attribute (the whole wire limit), through SNS it goes base64 (4/3 of its size), so SNS
 * mode offers three quarters of the wire limit.
 */
export function sqsCapabilities(settings: { readonly sns: boolean; readonly maxMessageBytes?: number | undefined }): Capabilities {
  const wire = settings.maxMessageBytes ?? (settings.sns ? SNS_MAX_BYTES : SQS_MAX_BYTES);
  return {
    delay: { kind: settings.sns ? 'emulated' : 'native', maxMs: MAX_DELAY_MS, precisionMs: 2000 },
    ordering: 'key',
    transactions: false,
    maxMessageBytes: settings.sns ? Math.floor((wire * 3) / 4) : wire,
    maxBatchSize: 10,
    deliveryCount: 'native',
    topicPattern: TOPIC_PATTERN,
    maxHeaders: Number.POSITIVE_INFINITY,
  };
}

export class SqsDriver implements Driver {
  readonly name = 'sqs';
  /** With SNS, sends go to an SNS topic: the conventions' `aws.sns` there (receives stay `aws_sqs`). */
  readonly sendSystem: string | undefined;
  readonly capabilities: Capabilities;
  /** Queues, SNS topics and subscriptions as `subscribe()` declares them (declare.ts). */
  readonly topology: DriverTopology;
  readonly #settings: SqsSettings;
  readonly #native: SqsNative;
  readonly #topology: Topology;
  readonly #sender: Sender;
  readonly #parts: ReceiverParts;
  readonly #logger: Logger;
  #closed = false;

  constructor(settings: SqsSettings, logger: Logger) {
    this.#settings = settings;
    this.capabilities = sqsCapabilities(settings);
    this.sendSystem = settings.sns ? 'aws.sns' : undefined;
    const common = {
      region: settings.region,
      maxAttempts: settings.sdkMaxAttempts,
      ...(settings.credentials ? { credentials: settings.credentials } : {}),
    };
    const sqs = new SQSClient({ ...common, ...(settings.endpoint ? { endpoint: settings.endpoint } : {}) });
    const snsEndpoint = settings.snsEndpoint ?? settings.endpoint;
    const sns = settings.sns ? new SNSClient({ ...common, ...(snsEndpoint ? { endpoint: snsEndpoint } : {}) }) : undefined;
    this.#native = { sqs, sns };
    this.#topology = new Topology(sqs, sns, settings);
    // Explicit declarations create whatever the `declare` option says about declaring on use.
    const creating = settings.declare ? this.#topology : new Topology(sqs, sns, { ...settings, declare: true });
    this.topology = sqsTopology({ sqs, sns, topology: creating, requestTimeoutMs: settings.requestTimeoutMs, declaresOnUse: settings.declare });
    this.#sender = new Sender(sqs, sns, this.#topology, settings);
    this.#logger = logger;
    // Seals attempt counts in re-sent copies (see wire.ts); random unless the consumers share one.
    const signingKey = settings.signingKey !== undefined ? new Uint8Array(Buffer.from(settings.signingKey, 'utf8')) : new Uint8Array(randomBytes(32));
    this.#parts = { sqs, sender: this.#sender, logger, signingKey, requestTimeoutMs: settings.requestTimeoutMs };
  }

  get native(): SqsNative {
    return this.#native;
  }

  async send(envelopes: readonly Envelope[]): Promise<SendOutcome[]> {
    if (this.#closed) throw new MqError('CLOSED', 'sqs driver is closed');
    return this.#sender.send(envelopes);
  }

  async receiver(spec: SubscriptionSpec): Promise<DriverReceiver> {
    if (this.#closed) throw new MqError('CLOSED', 'sqs driver is closed');
    const settings = parseSubscription(spec.options);
    // Checked before anything is declared: a configured maxReceiveCount must lie above maxAttempts.
    redriveReceiveCount(spec.maxAttempts, settings.maxReceiveCount);
    const fifo = isFifo(spec.topic);
    if (spec.ordered && !fifo) {
      throw new MqError('UNSUPPORTED', `sqs keeps per-key order on FIFO topics only: name the topic "${spec.topic}.fifo"`, { details: { topic: spec.topic } });
    }
    if (isFifo(spec.deadLetterTopic) !== fifo) {
      throw new MqError('CONFIG', `dead-letter topic "${spec.deadLetterTopic}" must be ${fifo ? '' : 'non-'}FIFO like "${spec.topic}"`);
    }
    if (settings.filterPolicy && !this.#settings.sns) throw new MqError('CONFIG', 'sqs: filterPolicy needs SNS mode (sns=true)');
    const queueUrl = await this.#declare(spec, settings, fifo).catch((err: unknown) => {
      if (!MqError.is(err, 'NOT_FOUND')) throw err;
      // declare=false and a queue is missing: name what and how to create it.
      const missing: MissingTopology = this.#settings.sns ? { kind: 'group', name: spec.group, topic: spec.topic } : { kind: 'topic', name: spec.topic };
      throw missingTopologyError('sqs', [missing], { topic: spec.topic, ordered: spec.ordered, groups: [spec.group] }, 'or leave the sqs option declare=true', err);
    });
    const redeclare = this.#settings.declare
      ? () => {
          this.#topology.forgetAll();
          return this.#declare(spec, settings, fifo);
        }
      : undefined;
    return new SqsReceiver(this.#parts, { topic: spec.topic, group: spec.group, queueUrl, maxInFlight: Math.max(1, spec.maxInFlight), ordered: spec.ordered, redeclare, settings });
  }

  /** Declares what one subscription consumes from and returns the queue URL. */
  async #declare(spec: SubscriptionSpec, settings: ReturnType<typeof parseSubscription>, fifo: boolean): Promise<string> {
    const maxReceiveCount = redriveReceiveCount(spec.maxAttempts, settings.maxReceiveCount, spec.ordered);
    const redrive = async (url: string, dlq: string): Promise<void> => {
      const replaced = await this.#topology.redrive(url, dlq, maxReceiveCount);
      if (replaced) {
        this.#logger.warn(
          { topic: spec.topic, group: spec.group, previous: replaced.previous, maxReceiveCount: maxReceiveCount ?? 'none' },
          'sqs: the queue had another redrive policy; replaced it to fit this subscription\'s retry.maxAttempts',
        );
      }
    };
    if (!this.#settings.sns) {
      const url = await this.#topology.queueUrl(topicQueueName(spec.topic), fifo);
      if (settings.redrive && this.#settings.declare) {
        const dlq = await this.#topology.queueUrl(topicQueueName(spec.deadLetterTopic), fifo);
        await redrive(url, dlq);
      }
      return url;
    }
    const url = await this.#topology.groupQueue({
      topicName: nativeTopicName(spec.topic),
      queueName: groupQueueName(spec.topic, spec.group),
      fifo,
      filterPolicy: settings.filterPolicy,
      filterPolicyScope: settings.filterPolicyScope,
    });
    if (this.#settings.declare) {
      // The group's queue on the dead-letter topic exists from now on, so dead letters published
      // before anyone subscribes to that topic are kept; it is also the redrive target.
      const dlq = await this.#topology.groupQueue({
        topicName: nativeTopicName(spec.deadLetterTopic),
        queueName: groupQueueName(spec.deadLetterTopic, spec.group),
        fifo,
        filterPolicyScope: 'MessageAttributes',
      });
      if (settings.redrive) await redrive(url, dlq);
    }
    return url;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.sqs.destroy();
    this.#native.sns?.destroy();
  }
}

/**
 * The `sqs://` adapter: `connect('sqs://us-east-1', { adapters: [sqs()] })`, or
 * `sqs://?region=…&endpoint=…&sns=false` for queue mode against an emulator. See the README for
 * every option.
 */
export function sqs(): Adapter {
  return {
    schemes: ['sqs'],
    async create(url: string, options: Readonly<Record<string, unknown>>, context: DriverContext): Promise<Driver> {
      const settings = parseConnection(url, options);
      if (settings.sns && !settings.declare && !settings.accountId) {
        throw new MqError('CONFIG', 'sqs: with sns=true and declare=false, accountId is needed to address topics');
      }
      return new SqsDriver(settings, context.logger);
    },
  };
}

/** Alias of {@link sqs}: the factory `connect()` looks for when it loads `@mqkit/sqs` by scheme. */
export const adapter = sqs;
