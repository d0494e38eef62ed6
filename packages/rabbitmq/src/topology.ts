/**
 * Idempotent declaration of the exchanges and queues mqkit uses (see names.ts), cached per
 * connection: after a reconnect everything is declared again on first use. Declarations run on
 * their own channel, because a refused one (406 inequivalent arguments) closes its channel.
 */
import type { Channel, Options } from 'amqplib';
import { MqError } from '@mqkit/core/driver';
import { classifyError, replyCode, REPLY } from './errors.ts';
import type { ConnectionManager, Link, LinkUser } from './connection.ts';
import { groupQueueName, retryDelayQueueName } from './names.ts';
import type { ResolvedRabbitmqOptions } from './options.ts';

/** What a group's queue is declared with. */
export interface GroupQueueSpec {
  readonly topic: string;
  readonly group: string;
  /** Queue name (by default `<topic>.<group>`). */
  readonly queue?: string | undefined;
  readonly deadLetterTopic: string;
  /** Single active consumer: the whole group is served by one consumer at a time (ordering). */
  readonly singleActiveConsumer: boolean;
  /**
   * The subscription's `retry.maxAttempts` (may be Infinity): the queue's native delivery limit
   * must not be below it. Absent for a bare declare.
   */
  readonly maxAttempts?: number | undefined;
}

/** RabbitMQ 4's quorum delivery limit when a queue was declared without one. */
const RABBITMQ4_DEFAULT_DELIVERY_LIMIT = 20;

/**
 * The `x-delivery-limit` argument for a wanted limit: a finite limit as is; unlimited is no
 * argument on RabbitMQ 3.x (where -1 would dead-letter on the first return) and -1 on 4.x (where
 * no argument means 20).
 */
export function deliveryLimitArgument(limit: number, serverMajor: number): number | undefined {
  if (Number.isFinite(limit)) return limit;
  return serverMajor >= 4 ? -1 : undefined;
}

/** What a delivery-limit argument (or its absence) means on this server: deliveries allowed - 1. */
export function effectiveDeliveryLimit(argument: number | undefined, serverMajor: number): number {
  if (argument === undefined) return serverMajor >= 4 ? RABBITMQ4_DEFAULT_DELIVERY_LIMIT : Number.POSITIVE_INFINITY;
  if (argument < 0) return serverMajor >= 4 ? Number.POSITIVE_INFINITY : 0;
  return argument;
}

/**
 * From a 406 "inequivalent arg 'x-delivery-limit'" refusal: the limit the existing queue holds
 * (`null` = declared without one), or undefined when the refusal is about something else.
 */
export function existingDeliveryLimit(err: unknown): number | null | undefined {
  if (replyCode(err) !== REPLY.PRECONDITION_FAILED || !(err instanceof Error)) return undefined;
  const m = /inequivalent arg 'x-delivery-limit'.*but current is (?:none|the value '(-?\d+)'|'(-?\d+)')/.exec(err.message);
  if (!m) return undefined;
  const value = m[1] ?? m[2];
  return value === undefined ? null : Number(value);
}

/** The major version in the server's `version` property (3 when unknown). */
function serverMajorOf(link: Link): number {
  const props = (link.model as unknown as { connection?: { serverProperties?: { version?: unknown } } }).connection?.serverProperties;
  const version = props?.version;
  const text = Buffer.isBuffer(version) ? version.toString() : typeof version === 'string' ? version : '';
  const major = Number.parseInt(text, 10);
  return Number.isFinite(major) ? major : 3;
}

export class Topology implements LinkUser {
  readonly #manager: ConnectionManager;
  readonly #options: ResolvedRabbitmqOptions;
  readonly #done = new Map<string, Promise<void>>();
  readonly #declared = new Set<string>();
  #channel: Promise<Channel> | undefined;
  #epoch = -1;
  #serverMajor = 3;
  /** Native delivery limit of each group queue declared on this connection (Infinity: none). */
  readonly #limits = new Map<string, number>();

  constructor(manager: ConnectionManager, options: ResolvedRabbitmqOptions) {
    this.#manager = manager;
    this.#options = options;
  }

  onLink(link: Link): void {
    if (link.epoch !== this.#epoch) {
      this.#done.clear();
      this.#declared.clear();
      this.#limits.clear();
      this.#channel = undefined;
      this.#epoch = link.epoch;
      this.#serverMajor = serverMajorOf(link);
    }
  }

  onLinkLost(): void {
    this.#done.clear();
    this.#declared.clear();
    this.#limits.clear();
    this.#channel = undefined;
  }

  /** Declare `queue` (and its bindings) again on next use: it may have been deleted. */
  forgetQueue(queue: string): void {
    for (const id of this.#done.keys()) if (id.startsWith(`q:${queue}:`)) this.#done.delete(id);
  }

  /** Whether mqkit declares topology at all. */
  get enabled(): boolean {
    return this.#options.declare;
  }

  /** The durable topic exchange of `topic`. */
  exchange(topic: string): Promise<void> {
    const p = this.#once(`x:${topic}`, (ch) => ch.assertExchange(topic, 'topic', { durable: true }));
    if (!this.#declared.has(topic)) void p.then(() => this.#declared.add(topic), () => {});
    return p;
  }

  /** True once `topic`'s exchange was declared on this connection (lets sends skip an await). */
  isExchangeDeclared(topic: string): boolean {
    return this.#declared.has(topic);
  }

  /** The dead-letter topic's exchange and, by default, the queue that keeps all its messages. */
  deadLetter(topic: string): Promise<void> {
    return this.#once(`dl:${topic}`, async (ch) => {
      await ch.assertExchange(topic, 'topic', { durable: true });
      if (!this.#options.deadLetterQueue) return;
      await ch.assertQueue(topic, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      await ch.bindQueue(topic, topic, '#');
    });
  }

  /**
   * The group's quorum queue, bound to its topic. Returns the queue name.
   *
   * A new queue gets the `deliveryLimit` option (unlimited by default). A queue declared earlier
   * with another limit (an older mqkit declared 20) cannot be changed in place (406 inequivalent
   * arg): it is used with the limit it has, as long as that is not below `maxAttempts`, so that
   * RabbitMQ never dead-letters before mqkit does; otherwise this fails CONFIG naming the limit.
   */
  async group(spec: GroupQueueSpec): Promise<string> {
    const queue = spec.queue ?? groupQueueName(spec.topic, spec.group);
    await this.exchange(spec.topic);
    await this.deadLetter(spec.deadLetterTopic);
    await this.#once(`q:${queue}:${spec.singleActiveConsumer}:${spec.deadLetterTopic}`, (ch) => this.#declareGroupQueue(ch, queue, spec));
    const limit = this.#limits.get(queue) ?? Number.POSITIVE_INFINITY;
    if (spec.maxAttempts !== undefined && spec.maxAttempts > limit) {
      throw new MqError(
        'CONFIG',
        `queue "${queue}" exists with x-delivery-limit ${limit}: RabbitMQ dead-letters a message after ${limit + 1} deliveries, before retry.maxAttempts ${spec.maxAttempts}. ` +
          'Lower retry.maxAttempts, or drain and delete the queue so that it is declared again without a limit (queue arguments cannot change in place)',
        { details: { queue, deliveryLimit: limit, maxAttempts: spec.maxAttempts } },
      );
    }
    return queue;
  }

  async #declareGroupQueue(ch: Channel, queue: string, spec: GroupQueueSpec): Promise<void> {
    const args = (limit: number | undefined): Record<string, unknown> => {
      const a: Record<string, unknown> = { 'x-queue-type': 'quorum', 'x-dead-letter-exchange': spec.deadLetterTopic };
      if (limit !== undefined) a['x-delivery-limit'] = limit;
      if (spec.singleActiveConsumer) a['x-single-active-consumer'] = true;
      return a;
    };
    let limit = deliveryLimitArgument(this.#options.deliveryLimit, this.#serverMajor);
    // On a channel of its own: a queue declared earlier with another limit is refused (406), which
    // closes the channel, and declarations of other topics share the usual one.
    let probe = await this.#freshChannel();
    try {
      await probe.assertQueue(queue, { durable: true, arguments: args(limit) });
    } catch (err) {
      const existing = existingDeliveryLimit(err);
      if (existing === undefined) throw err;
      // Declared before with another limit: use it as it is (checked against maxAttempts by group()).
      limit = existing ?? undefined;
      probe = await this.#freshChannel();
      await probe.assertQueue(queue, { durable: true, arguments: args(limit) });
    } finally {
      await probe.close().catch(() => {});
    }
    this.#limits.set(queue, effectiveDeliveryLimit(limit, this.#serverMajor));
    await ch.bindQueue(queue, spec.topic, '#');
  }

  /**
   * The TTL queue delaying retries of one group (and delayed publishes once they reached it); it
   * dead-letters into that group's queue only. A quorum queue with at-least-once dead-lettering
   * (which needs `x-overflow: reject-publish`): RabbitMQ keeps an expired message until the group
   * queue confirmed it, instead of dropping it on the way (a classic queue's, or the default,
   * at-most-once dead-lettering).
   */
  async retryDelay(groupQueue: string, bucketMs: number): Promise<string> {
    const queue = retryDelayQueueName(groupQueue, bucketMs);
    await this.#once(`rd:${queue}`, (ch) => ch.assertQueue(queue, delayQueueOptions(groupQueue)));
    return queue;
  }

  async #freshChannel(): Promise<Channel> {
    const link = this.#manager.link;
    if (!link) throw new MqError(this.#manager.closed ? 'CLOSED' : 'CONNECTION', 'rabbitmq connection is down; reconnecting');
    const ch = await link.model.createChannel();
    ch.on('error', () => {});
    return ch;
  }

  /**
   * Whether an exchange or queue exists (a passive declare, on a channel of its own since a 404
   * closes it). Rejects, classified, when the broker cannot tell.
   */
  async exists(kind: 'exchange' | 'queue', name: string): Promise<boolean> {
    const ch = await this.#freshChannel();
    try {
      if (kind === 'exchange') await ch.checkExchange(name);
      else await ch.checkQueue(name);
      return true;
    } catch (err) {
      if (replyCode(err) === REPLY.NOT_FOUND) return false;
      throw classifyError(err, `checking ${kind} "${name}"`);
    } finally {
      await ch.close().catch(() => {});
    }
  }

  /** Effective native delivery limit of a group queue declared on this connection (for tests). */
  deliveryLimitOf(queue: string): number | undefined {
    return this.#limits.get(queue);
  }

  #once(id: string, declare: (ch: Channel) => Promise<unknown>): Promise<void> {
    let p = this.#done.get(id);
    if (!p) {
      p = this.#run(id, declare);
      this.#done.set(id, p);
      p.catch(() => {
        if (this.#done.get(id) === p) this.#done.delete(id);
      });
    }
    return p;
  }

  async #run(id: string, declare: (ch: Channel) => Promise<unknown>): Promise<void> {
    const ch = await this.#getChannel();
    try {
      await declare(ch);
    } catch (err) {
      const error = classifyError(err, `declaring ${id.slice(id.indexOf(':') + 1)}`);
      if (error.code === 'CONFIG') {
        throw new MqError('CONFIG', `${error.message} (an existing queue or exchange was declared with other settings: delete it or use declare=false)`, {
          cause: err,
          details: error.details,
        });
      }
      throw error;
    }
  }

  async #getChannel(): Promise<Channel> {
    const link = this.#manager.link;
    if (!link) throw new MqError(this.#manager.closed ? 'CLOSED' : 'CONNECTION', 'rabbitmq connection is down; reconnecting');
    if (!this.#channel) {
      const opening = link.model.createChannel().then((ch) => {
        ch.on('error', () => {});
        ch.on('close', () => {
          if (this.#channel === opening) this.#channel = undefined;
        });
        return ch;
      });
      this.#channel = opening;
      opening.catch(() => {
        if (this.#channel === opening) this.#channel = undefined;
      });
    }
    try {
      return await this.#channel;
    } catch (err) {
      throw classifyError(err, 'cannot open a channel for declarations');
    }
  }
}

/** Declare options of a group's delay queue (see {@link Topology.retryDelay}). */
export function delayQueueOptions(groupQueue: string): Options.AssertQueue {
  return {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': groupQueue,
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    },
  };
}
