/**
 * One consumer of a group's quorum queue on its own channel: manual ack, `prefetch` =
 * the subscription's in-flight bound, retries through per-delay TTL queues that lead back to
 * this group's queue only, per-key lanes when ordered, and rebuild after a lost channel or
 * connection (deliveries of the old channel then refuse to settle: the broker redelivers them).
 */
import type { Channel, ConsumeMessage } from 'amqplib';
import {
  backoffDelay,
  MqError,
  type DeliverySink,
  type DriverDelivery,
  type DriverSubscription,
  type Logger,
  type SubscriptionSpec,
  settledWithin,
} from '@mqkit/core/driver';
import { AckBatcher } from './acks.ts';
import type { ConnectionManager, Link, LinkUser } from './connection.ts';
import { classifyError } from './errors.ts';
import { delayBucket, groupQueueName, retryDelayQueueName } from './names.ts';
import { prefetchCount, type RabbitmqSubscribeOptions } from './options.ts';
import type { Publisher } from './publisher.ts';
import type { Topology } from './topology.ts';
import { fromDelivery, toPublishOptions, type Received } from './wire.ts';

export type { RabbitmqSubscribeOptions };

/** One message held by this consumer, unsettled. */
interface Held {
  readonly message: ConsumeMessage;
  readonly generation: number;
  readonly consumer: Consumer;
  readonly received: Received;
  /**
   * Ordered retry: handed back to the broker (basic.nack requeue, which counts the delivery in
   * `x-delivery-count`); the lane waits at this place for its redelivery.
   */
  requeued: boolean;
  /**
   * Set on a requeued head once a later arrival of its key had to go back to the broker (see
   * #admit): every further arrival of the key goes back too until the head returns, keeping order.
   */
  rotating?: boolean;
}

interface Consumer {
  readonly channel: Channel;
  readonly generation: number;
  /** Coalesces this channel's acks (see acks.ts); every settle of a delivery goes through it. */
  readonly acks: AckBatcher;
  consumerTag: string | undefined;
  closedByUs: boolean;
}

/** What a {@link RabbitDelivery} calls back into its subscription. */
interface Settler {
  ack(held: Held): Promise<void>;
  nack(held: Held, attempt: number, delayMs: number): Promise<void>;
}

/**
 * A delivery handed to core. A class (methods on the prototype) rather than an object literal
 * with `ack`/`nack` closures: one allocation per message instead of three.
 */
class RabbitDelivery implements DriverDelivery {
  readonly envelope: DriverDelivery['envelope'];
  readonly attempt: number;
  readonly orderingKey: string | undefined;
  readonly meta: Readonly<Record<string, string>>;
  readonly #settler: Settler;
  readonly #held: Held;

  constructor(settler: Settler, held: Held, queue: string) {
    const { envelope, priorAttempts, deliveryCount } = held.received;
    const { fields } = held.message;
    this.envelope = envelope;
    this.attempt = priorAttempts + deliveryCount + 1;
    this.orderingKey = envelope.key;
    this.meta = { queue, 'delivery-tag': String(fields.deliveryTag), redelivered: fields.redelivered ? 'true' : 'false' };
    this.#settler = settler;
    this.#held = held;
  }

  ack(): Promise<void> {
    return this.#settler.ack(this.#held);
  }

  nack(delayMs: number): Promise<void> {
    return this.#settler.nack(this.#held, this.attempt, delayMs);
  }
}

function connectionLost(cause: unknown): MqError {
  return new MqError('CONNECTION', 'the channel this message came on was lost; RabbitMQ redelivers it', { cause, retryable: false });
}

/** What a subscription needs from its driver. */
export interface SubscriptionDeps {
  readonly manager: ConnectionManager;
  readonly topology: Topology;
  readonly publisher: Publisher;
  readonly logger: Logger;
}

/** A delayed retry whose copy is not confirmed by then is requeued instead (see below). */
const RETRY_CONFIRM_TIMEOUT_MS = 10_000;

const REBUILD_POLICY = { initialDelayMs: 100, maxDelayMs: 5_000, multiplier: 2, jitter: true };

/** How long close() waits for parking copies in flight (see RabbitSubscription.close). */
const PARKING_CLOSE_WAIT_MS = 5_000;

/** A delayed publish that cannot be parked in the delay queue is tried again after this backoff. */
const DEFER_RETRY_POLICY = { initialDelayMs: 500, maxDelayMs: 30_000, multiplier: 2, jitter: true };

export class RabbitSubscription implements DriverSubscription, LinkUser {
  readonly #deps: SubscriptionDeps;
  readonly #spec: SubscriptionSpec;
  readonly #sink: DeliverySink;
  readonly #queue: string;
  /** basic.qos prefetch of the consumer channel (set by #setup). */
  #prefetch = 1;
  #consumer: Consumer | undefined;
  #generation = 0;
  #open = true;
  #paused = false;
  readonly #parked: Held[] = [];
  /** Ordered subscriptions: per key, the held messages; the first one is with core. */
  readonly #lanes = new Map<string, Held[]>();
  readonly #timers = new Set<NodeJS.Timeout>();
  /** Copies in flight to a delay queue (delayed retries, parked delayed publishes): close() waits for them. */
  readonly #parking = new Set<Promise<void>>();
  #rebuilding: Promise<void> | undefined;
  readonly #settler: Settler = {
    ack: (held) => this.#ack(held),
    nack: (held, attempt, delayMs) => this.#nack(held, attempt, delayMs),
  };

  constructor(deps: SubscriptionDeps, spec: SubscriptionSpec, sink: DeliverySink, options: RabbitmqSubscribeOptions) {
    this.#deps = deps;
    this.#spec = spec;
    this.#sink = sink;
    this.#queue = options.queue ?? groupQueueName(spec.topic, spec.group);
  }

  /** Declares and starts consuming; throws a classified MqError when that fails. */
  async start(): Promise<void> {
    // During a reconnect, give the connection a moment instead of failing at once.
    const link = await this.#deps.manager.waitForLink(10_000);
    if (!link) throw new MqError(this.#deps.manager.closed ? 'CLOSED' : 'CONNECTION', 'rabbitmq connection is down; reconnecting');
    await this.#setup(link);
    await this.#deps.manager.attach(this);
  }

  onLink(link: Link): void {
    if (!this.#open || this.#consumer) return;
    this.#rebuild(link.epoch);
  }

  onLinkLost(): void {
    this.#drop();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    for (const held of this.#parked.splice(0)) this.#emit(held);
  }

  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    this.#deps.manager.detach(this);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    // Copies to a delay queue awaiting their confirm: let their originals' acks out first,
    // otherwise the original comes back to the next consumer besides the copy (a duplicate). Bounded.
    if (this.#parking.size > 0) await settledWithin(Promise.allSettled(this.#parking), PARKING_CLOSE_WAIT_MS);
    const consumer = this.#consumer;
    if (consumer) {
      consumer.closedByUs = true;
      // Acks core already handed over leave before the channel closes (else: redelivered).
      consumer.acks.flush();
      // After cancel-ok nothing more arrives; what arrived meanwhile joined its lane (not handed over).
      if (consumer.consumerTag) await consumer.channel.cancel(consumer.consumerTag).catch(() => {});
      if (this.#consumer === consumer) this.#requeueLanes(consumer);
    }
    this.#drop();
    // Closing the channel hands every other unacked delivery back to the queue; acks already sent go first.
    if (consumer) await consumer.channel.close().catch(() => {});
    await this.#rebuilding?.catch(() => {});
  }

  /** Forgets the current channel's deliveries: they are (or will be) redelivered by the broker. */
  #drop(): void {
    this.#consumer = undefined;
    this.#generation += 1;
    this.#parked.length = 0;
    this.#lanes.clear();
  }

  async #setup(link: Link): Promise<void> {
    const { topology } = this.#deps;
    if (topology.enabled) {
      await topology.group({
        topic: this.#spec.topic,
        group: this.#spec.group,
        deadLetterTopic: this.#spec.deadLetterTopic,
        singleActiveConsumer: this.#spec.ordered,
        queue: this.#queue,
        maxAttempts: this.#spec.maxAttempts,
      });
    }
    let channel: Channel;
    try {
      channel = await link.model.createChannel();
    } catch (err) {
      throw classifyError(err, `cannot open a channel for "${this.#queue}"`);
    }
    const generation = ++this.#generation;
    const consumer: Consumer = { channel, generation, acks: new AckBatcher(channel, connectionLost), consumerTag: undefined, closedByUs: false };
    channel.on('error', (err: unknown) => {
      this.#deps.logger.warn({ err: classifyError(err, `consumer channel of "${this.#queue}"`) }, 'rabbitmq closed a consumer channel; resubscribing');
    });
    channel.on('close', () => this.#channelClosed(consumer));
    // Current before basic.consume: amqplib may hand over the first deliveries before the
    // consume promise settles.
    this.#consumer = consumer;
    try {
      this.#prefetch = prefetchCount(this.#spec.maxInFlight);
      await channel.prefetch(this.#prefetch);
      const { consumerTag } = await channel.consume(
        this.#queue,
        (message) => {
          if (message) this.#onMessage(consumer, message);
          else this.#cancelledByBroker(consumer);
        },
        { noAck: false },
      );
      consumer.consumerTag = consumerTag;
    } catch (err) {
      consumer.closedByUs = true;
      if (this.#consumer === consumer) this.#drop();
      await channel.close().catch(() => {});
      throw classifyError(err, `cannot consume "${this.#queue}"`);
    }
    if (!this.#open) {
      consumer.closedByUs = true;
      await channel.close().catch(() => {});
    }
  }

  #channelClosed(consumer: Consumer): void {
    if (this.#consumer !== consumer) return;
    this.#drop();
    if (consumer.closedByUs || !this.#open) return;
    const link = this.#deps.manager.link;
    // Connection still up: the channel alone was closed (protocol error); rebuild on this link.
    if (link) this.#rebuild(link.epoch);
  }

  #cancelledByBroker(consumer: Consumer): void {
    if (this.#consumer !== consumer) return;
    this.#sink.error(new MqError('NOT_FOUND', `RabbitMQ cancelled the consumer of "${this.#queue}" (queue deleted?); resubscribing`));
    consumer.closedByUs = true;
    this.#drop();
    consumer.acks.flush();
    void consumer.channel.close().catch(() => {});
    const link = this.#deps.manager.link;
    if (link && this.#open) this.#rebuild(link.epoch);
  }

  /** Re-declares and re-consumes with backoff until it works, the link changes, or close(). */
  #rebuild(epoch: number): void {
    if (this.#rebuilding) return;
    this.#rebuilding = (async () => {
      for (let attempt = 1; this.#open && !this.#consumer; attempt += 1) {
        const link = this.#deps.manager.link;
        if (!link || link.epoch !== epoch) return;
        try {
          // Whatever closed the channel may have removed the queue: declare it again.
          this.#deps.topology.forgetQueue(this.#queue);
          await this.#setup(link);
          if (attempt > 1 || epoch > 1) this.#deps.logger.info({ queue: this.#queue }, 'rabbitmq consumer resubscribed');
          return;
        } catch (err) {
          const error = classifyError(err, `resubscribing "${this.#queue}"`);
          if (!error.retryable) this.#sink.error(error);
          await new Promise((r) => setTimeout(r, backoffDelay(REBUILD_POLICY, attempt)));
        }
      }
    })().finally(() => {
      this.#rebuilding = undefined;
      // The link may have come back while we were waiting on an old one.
      const link = this.#deps.manager.link;
      if (this.#open && !this.#consumer && link && link.epoch !== epoch) this.#rebuild(link.epoch);
    });
  }

  #onMessage(consumer: Consumer, message: ConsumeMessage): void {
    if (this.#consumer !== consumer) return; // unacked: the broker takes it back on close
    // Closing: only an ordered subscription keeps it (in its lane, requeued in order by close()).
    if (!this.#open && !this.#spec.ordered) return;
    consumer.acks.delivered(message.fields.deliveryTag);
    const { fields } = message;
    const received = fromDelivery(this.#spec.topic, message.content, message.properties, fields.redelivered, this.#queue, fields.routingKey);
    const held: Held = { message, generation: consumer.generation, consumer, received, requeued: false };
    if (received.deliverAt !== undefined) {
      if (!this.#open) return; // closing: returned to the queue with the channel
      // A delayed publish, not due yet: parked in this group's delay queue, not handed to core.
      this.#park(held, 1);
      return;
    }
    this.#admit(held);
  }

  /** Hands a received message to core, or queues it behind the held message of its key. */
  #admit(held: Held): void {
    const key = this.#laneKey(held);
    if (key !== undefined) {
      const lane = this.#lanes.get(key);
      if (lane) {
        const head = lane[0]!;
        if (head.requeued && held.message.fields.redelivered && head.received.envelope.id === held.received.envelope.id) {
          // The ordered retry came back: it takes its old place, ahead of the later ones of its key.
          lane[0] = held;
          this.#emit(held);
          return;
        }
        if (head.requeued && (head.rotating || this.#stuckBehindRequeued() + 1 >= this.#prefetch)) {
          // Every prefetch slot would hold a message waiting for the requeued head, so RabbitMQ
          // could not deliver it (it may queue messages it returned after a failover ahead of a
          // requeued one). This one goes back too, behind the head; it counts as a delivery
          // (conservative: one more than it was handled, never less).
          head.rotating = true;
          this.#requeue(held);
          return;
        }
        lane.push(held);
        return;
      }
      this.#lanes.set(key, [held]);
    }
    this.#emit(held);
  }

  /** Messages held in lanes whose head went back to the broker (they wait for its return). */
  #stuckBehindRequeued(): number {
    let n = 0;
    for (const lane of this.#lanes.values()) if (lane[0]!.requeued) n += lane.length - 1;
    return n;
  }

  /** basic.nack(requeue) of a held message; false when its channel is gone (the broker has it back). */
  #requeue(held: Held): boolean {
    try {
      settleOn(held, (ch) => ch.nack(held.message, false, true));
      return true;
    } catch {
      return false;
    }
  }

  #laneKey(held: Held): string | undefined {
    return this.#spec.ordered ? held.received.envelope.key : undefined;
  }

  #emit(held: Held): void {
    if (held.generation !== this.#generation || !this.#open) return;
    if (this.#paused) {
      this.#parked.push(held);
      return;
    }
    this.#sink.deliver(new RabbitDelivery(this.#settler, held, this.#queue));
  }

  /** The held message is done here; the next one of its key may go. */
  #release(held: Held): void {
    const key = this.#laneKey(held);
    if (key === undefined) return;
    const lane = this.#lanes.get(key);
    if (!lane || lane[0] !== held) return;
    lane.shift();
    const next = lane[0];
    if (next) this.#emit(next);
    else this.#lanes.delete(key);
  }

  #ack(held: Held): Promise<void> {
    try {
      this.#check(held);
    } catch (err) {
      return Promise.reject(err);
    }
    const done = held.consumer.acks.ack(held.message);
    this.#release(held);
    return done;
  }

  async #nack(held: Held, attempt: number, delayMs: number): Promise<void> {
    this.#check(held);
    if (this.#laneKey(held) !== undefined) {
      this.#retryInPlace(held, delayMs);
      return;
    }
    if (delayMs <= 0) {
      settleOn(held, (ch) => ch.nack(held.message, false, true));
      return;
    }
    const copying = this.#retryThroughDelayQueue(held, attempt, delayMs);
    const tracked = copying.finally(() => this.#parking.delete(tracked)).catch(() => {});
    this.#parking.add(tracked);
    await copying;
  }

  #check(held: Held): void {
    if (!this.#open) throw new MqError('CLOSED', 'subscription is closed; the message will be redelivered');
    if (held.generation !== this.#generation || this.#consumer !== held.consumer) {
      throw new MqError('CONNECTION', 'the channel this message came on was lost; RabbitMQ redelivers it', { retryable: false });
    }
  }

  /**
   * Ordered retry: the message stays unacked for the delay (so no later message of its key can
   * overtake it), then goes back to the broker with basic.nack(requeue), which counts the
   * delivery in the quorum queue's `x-delivery-count`: the attempt survives a close or a crash
   * (an in-process count would be lost, and the next consumer would repeat an attempt). The lane
   * keeps its place until the redelivery arrives (see #admit); with a single active consumer it
   * comes back to this consumer. A close or crash in the delay returns it, counted, as well.
   */
  #retryInPlace(held: Held, delayMs: number): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (held.generation !== this.#generation || !this.#open) return;
      // Channel gone: the broker returns it (counted) and the lane goes with the channel.
      if (this.#requeue(held)) held.requeued = true;
    }, Math.max(0, delayMs));
    this.#timers.add(timer);
  }

  /**
   * Closing an ordered subscription: hands the held messages back key by key in lane order
   * (basic.nack requeue, after basic.cancel so none comes back here). Left to the channel close,
   * RabbitMQ would return them in delivery-tag order, putting a retried message (redelivered
   * with a later tag) behind the later messages of its key. Each counts as a delivery, as a
   * channel close would count it.
   */
  #requeueLanes(consumer: Consumer): void {
    for (const lane of this.#lanes.values()) {
      for (const held of lane) {
        if (held.requeued || held.consumer !== consumer) continue;
        if (!this.#requeue(held)) return; // channel gone: everything unacked is back in the queue already
      }
    }
  }

  /**
   * Unordered retry after a delay: a copy goes to this group's TTL queue for the delay bucket
   * (dead-lettering back into this group's queue only), and the original is acked once the copy
   * is confirmed. If the copy cannot be stored, the original is requeued at once instead: retried
   * early rather than lost.
   */
  async #retryThroughDelayQueue(held: Held, attempt: number, delayMs: number): Promise<void> {
    const { topology, publisher, logger } = this.#deps;
    const { envelope } = held.received;
    let error: MqError | undefined;
    try {
      const bucket = delayBucket(delayMs);
      const queue = topology.enabled ? await topology.retryDelay(this.#queue, bucket) : retryDelayQueueName(this.#queue, bucket);
      const options = toPublishOptions(envelope, attempt);
      options.expiration = String(Math.ceil(delayMs));
      const routingKey = queue;
      [error] = await publisher.publishAll(
        [{ exchange: '', routingKey, content: Buffer.from(envelope.body.buffer, envelope.body.byteOffset, envelope.body.byteLength), options }],
        RETRY_CONFIRM_TIMEOUT_MS,
      );
    } catch (err) {
      error = classifyError(err, `delaying a retry of "${this.#queue}"`);
    }
    if (held.generation !== this.#generation) {
      // The channel was lost: the original comes back from the broker; a stored copy makes it a
      // duplicate at worst. (A closing subscription still settles it: close() waits for this.)
      return;
    }
    if (error) {
      logger.warn({ err: error, id: envelope.id, queue: this.#queue }, 'cannot store a delayed retry; requeueing the message now');
      settleOn(held, (ch) => ch.nack(held.message, false, true));
      return;
    }
    settleOn(held, (ch) => ch.ack(held.message));
  }

  #park(held: Held, attempt: number): void {
    const parking = this.#defer(held, attempt).finally(() => this.#parking.delete(parking));
    this.#parking.add(parking);
  }

  /**
   * A delayed publish reached this group before its time: a copy goes to the group's delay queue
   * for the rest of the delay (at-least-once dead-lettering back into this queue), then the
   * original is acked. If the copy cannot be stored, the original stays unacked and the copy is
   * tried again after a backoff: never delivered early, never dropped (a lost channel hands it
   * back to the broker).
   */
  async #defer(held: Held, attempt: number): Promise<void> {
    const { topology, publisher, logger } = this.#deps;
    const { envelope, priorAttempts, deliverAt } = held.received;
    const remaining = Math.ceil((deliverAt ?? 0) - Date.now());
    if (remaining <= 0) {
      // Due by now (e.g. after a failed parking attempt): handled like any other message.
      this.#admit(held);
      return;
    }
    let error: MqError | undefined;
    try {
      const bucket = delayBucket(remaining);
      const queue = topology.enabled ? await topology.retryDelay(this.#queue, bucket) : retryDelayQueueName(this.#queue, bucket);
      const options = toPublishOptions(envelope, priorAttempts);
      options.expiration = String(remaining);
      [error] = await publisher.publishAll(
        [{ exchange: '', routingKey: queue, content: Buffer.from(envelope.body.buffer, envelope.body.byteOffset, envelope.body.byteLength), options }],
        RETRY_CONFIRM_TIMEOUT_MS,
      );
    } catch (err) {
      error = classifyError(err, `delaying a message of "${this.#queue}"`);
    }
    // A closing subscription still acks a stored copy's original (close() waits for it); a lost
    // channel cannot: the broker redelivers the original, the copy makes it a duplicate at worst.
    if (held.generation !== this.#generation) return;
    if (error) {
      if (!this.#open) return; // closing: the original goes back to the queue, no copy was stored
      logger.warn({ err: error, id: envelope.id, queue: this.#queue }, 'cannot park a delayed message in its delay queue; trying again');
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        if (held.generation === this.#generation && this.#open) this.#park(held, attempt + 1);
      }, backoffDelay(DEFER_RETRY_POLICY, attempt));
      this.#timers.add(timer);
      return;
    }
    try {
      settleOn(held, (ch) => ch.ack(held.message));
    } catch {
      // channel gone: the broker redelivers the original; the stored copy makes it a duplicate at worst
    }
  }
}

/**
 * Settles one delivery directly on its channel (a nack, or the ack after a delayed retry's copy
 * was stored) and tells the ack batcher, whose `multiple` acks may then pass this tag. ack/nack
 * return nothing in amqplib and throw only when the channel is already closed.
 */
function settleOn(held: Held, action: (channel: Channel) => void): void {
  try {
    action(held.consumer.channel);
  } catch (err) {
    throw connectionLost(err);
  }
  held.consumer.acks.settled(held.message.fields.deliveryTag);
}
