/**
 * Idempotent declaration of the exchanges and queues mqkit uses (see names.ts), cached per
 * connection: after a reconnect everything is declared again on first use. Declarations run on
 * their own channel, because a refused one (406 inequivalent arguments) closes its channel.
 */
import type { Channel, Options } from 'amqplib';
import { MqError } from '@mqkit/core/driver';
import { classifyError } from './errors.ts';
import type { ConnectionManager, Link, LinkUser } from './connection.ts';
import { groupQueueName, publishDelayQueueName, retryDelayQueueName } from './names.ts';
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
}

export class Topology implements LinkUser {
  readonly #manager: ConnectionManager;
  readonly #options: ResolvedRabbitmqOptions;
  readonly #done = new Map<string, Promise<void>>();
  readonly #declared = new Set<string>();
  #channel: Promise<Channel> | undefined;
  #epoch = -1;

  constructor(manager: ConnectionManager, options: ResolvedRabbitmqOptions) {
    this.#manager = manager;
    this.#options = options;
  }

  onLink(link: Link): void {
    if (link.epoch !== this.#epoch) {
      this.#done.clear();
      this.#declared.clear();
      this.#channel = undefined;
      this.#epoch = link.epoch;
    }
  }

  onLinkLost(): void {
    this.#done.clear();
    this.#declared.clear();
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

  /** The group's quorum queue, bound to its topic. Returns the queue name. */
  async group(spec: GroupQueueSpec): Promise<string> {
    const queue = spec.queue ?? groupQueueName(spec.topic, spec.group);
    await this.exchange(spec.topic);
    await this.deadLetter(spec.deadLetterTopic);
    const args: Record<string, unknown> = {
      'x-queue-type': 'quorum',
      'x-delivery-limit': this.#options.deliveryLimit,
      'x-dead-letter-exchange': spec.deadLetterTopic,
    };
    if (spec.singleActiveConsumer) args['x-single-active-consumer'] = true;
    await this.#once(`q:${queue}:${spec.singleActiveConsumer}:${spec.deadLetterTopic}`, async (ch) => {
      await ch.assertQueue(queue, { durable: true, arguments: args });
      await ch.bindQueue(queue, spec.topic, '#');
    });
    return queue;
  }

  /** The TTL queue delaying publishes to `topic`; it dead-letters into the topic's exchange. */
  async publishDelay(topic: string, bucketMs: number): Promise<string> {
    const queue = publishDelayQueueName(topic, bucketMs);
    await this.#once(`pd:${queue}`, async (ch) => {
      await ch.assertExchange(topic, 'topic', { durable: true });
      await ch.assertQueue(queue, this.#delayQueue({ 'x-dead-letter-exchange': topic }));
    });
    return queue;
  }

  /** The TTL queue delaying retries of one group; it dead-letters into that group's queue only. */
  async retryDelay(groupQueue: string, bucketMs: number): Promise<string> {
    const queue = retryDelayQueueName(groupQueue, bucketMs);
    await this.#once(`rd:${queue}`, (ch) =>
      ch.assertQueue(queue, this.#delayQueue({ 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': groupQueue })),
    );
    return queue;
  }

  #delayQueue(args: Record<string, unknown>): Options.AssertQueue {
    return { durable: true, arguments: { 'x-queue-type': this.#options.delayQueueType, ...args } };
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
