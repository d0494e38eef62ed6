/**
 * The consume side of one group's quorum queue on core's pull contract: basic.consume with
 * `prefetch` = the subscription's in-flight bound on a channel of its own, into a buffer that
 * {@link RabbitReceiver.receive} drains (the broker never has more than `prefetch` unacked, so the
 * buffer is bounded). Core runs the loops, lanes, settle batching and give-back on close; what
 * stays here is RabbitMQ's own: acks coalesced with `multiple`, retries through per-delay TTL
 * queues leading back to this group's queue only, delayed publishes parked until due, ordered
 * retries kept in the queue (see {@link RabbitReceiver.nack}), and rebuild after a lost channel
 * or connection (messages of the old channel then refuse to settle: the broker redelivers them).
 */
import type { Channel, ConsumeMessage } from 'amqplib';
import {
  backoffDelay,
  MqError,
  PushBuffer,
  settledWithin,
  type DriverReceiver,
  type Logger,
  type ReceivedMessage,
  type SettleResults,
  type SubscriptionSpec,
  uninstrumented,
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

interface Consumer {
  readonly channel: Channel;
  /** Coalesces this channel's acks (see acks.ts); every settle of a message goes through it. */
  readonly acks: AckBatcher;
  consumerTag: string | undefined;
  /** basic.cancel on its way or done (intake stopped; see #watch). */
  cancelled: Promise<void> | undefined;
  closedByUs: boolean;
}

/** A message received on a consumer channel; its delivery tag settles it there. */
export interface RabbitMessage extends ReceivedMessage {
  readonly delivery: ConsumeMessage;
  readonly consumer: Consumer;
}

/**
 * An ordered retry of one key: the nacked message stays unacked for its delay and is then
 * requeued on the broker, and every later message of its key waits here until it comes back.
 */
interface Barrier {
  readonly headId: string;
  /** The nacked message while it waits out its delay (undefined once requeued). */
  head: RabbitMessage | undefined;
  /** Later messages of the key, unacked, in order: handed to core after the head's return. */
  readonly blocked: RabbitMessage[];
  /** Later arrivals go back to the broker too until the head returns (see #admit). */
  rotating: boolean;
}

/** What a receiver needs from its driver. */
export interface ReceiverDeps {
  readonly manager: ConnectionManager;
  readonly topology: Topology;
  readonly publisher: Publisher;
  readonly logger: Logger;
  /** The connection URL without its password (names the vhost): with the queue, the id scope. */
  readonly safeUrl: string;
}

/** A delayed retry whose copy is not confirmed by then is requeued instead (see below). */
const RETRY_CONFIRM_TIMEOUT_MS = 10_000;
const REBUILD_POLICY = { initialDelayMs: 100, maxDelayMs: 5_000, multiplier: 2, jitter: true };
/** How long close() waits for parking copies in flight. */
const PARKING_CLOSE_WAIT_MS = 5_000;
/** Numbers every delivery of the process (see the id in #message). */
let deliveries = 0;
/** A delayed publish that cannot be parked in the delay queue is tried again after this backoff. */
const DEFER_RETRY_POLICY = { initialDelayMs: 500, maxDelayMs: 30_000, multiplier: 2, jitter: true };

function channelLost(cause?: unknown): MqError {
  return new MqError('CONNECTION', 'the channel this message came on was lost; RabbitMQ redelivers it', { cause, retryable: false });
}

export class RabbitReceiver implements DriverReceiver<RabbitMessage>, LinkUser {
  readonly batchSize: number;
  readonly scope: string;
  readonly #deps: ReceiverDeps;
  readonly #spec: SubscriptionSpec;
  readonly #queue: string;
  readonly #prefetch: number;
  #consumer: Consumer | undefined;
  #open = true;
  /** Received on the current channel, not yet taken by core. */
  readonly #buffer = new PushBuffer<RabbitMessage>();
  /** A failure to report through the next receive(). */
  /** Ordered subscriptions: per key, the retry the later messages of the key wait for. */
  readonly #barriers = new Map<string, Barrier>();
  readonly #timers = new Set<NodeJS.Timeout>();
  /** Copies in flight to a delay queue (parked delayed publishes): close() waits for them. */
  readonly #parking = new Set<Promise<void>>();
  #rebuilding: Promise<void> | undefined;
  /** The signal of the latest receive() (see #watch). */
  #signal: AbortSignal | undefined;
  readonly #onClose: () => void;

  constructor(deps: ReceiverDeps, spec: SubscriptionSpec, options: RabbitmqSubscribeOptions, onClose: () => void = () => {}) {
    this.#deps = deps;
    this.#onClose = onClose;
    this.#spec = spec;
    this.#queue = options.queue ?? groupQueueName(spec.topic, spec.group);
    this.#prefetch = prefetchCount(spec.maxInFlight);
    this.batchSize = this.#prefetch;
    this.scope = `rabbitmq:${deps.safeUrl}\u0000${this.#queue}`;
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
    if (this.#open && !this.#consumer) this.#rebuild(link.epoch);
  }

  onLinkLost(): void {
    this.#drop();
  }

  async receive(max: number, signal: AbortSignal): Promise<readonly RabbitMessage[]> {
    if (!this.#open) throw new MqError('CLOSED', 'subscription is closed');
    this.#watch(signal);
    if (this.#consumer?.cancelled && !signal.aborted) await this.#consume(this.#consumer);
    return this.#buffer.take(max, signal);
  }

  /**
   * Stops intake (basic.cancel) when the signal of the latest receive aborts, until the next
   * receive: core aborts it when the subscription closes, and the messages it then gives back
   * must not come straight back here (each return counts a delivery in the quorum queue).
   */
  #watch(signal: AbortSignal): void {
    if (signal === this.#signal) return;
    this.#signal = signal;
    const stop = (): void => {
      const consumer = this.#consumer;
      if (this.#signal === signal && consumer) void this.#cancel(consumer);
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  }

  #cancel(consumer: Consumer): Promise<void> {
    const tag = consumer.consumerTag;
    if (!consumer.cancelled && tag) consumer.cancelled = consumer.channel.cancel(tag).then(() => undefined, () => undefined);
    return consumer.cancelled ?? Promise.resolve();
  }

  /** basic.consume on the consumer's channel (again, after a cancel by #watch). */
  async #consume(consumer: Consumer): Promise<void> {
    if (consumer.cancelled) {
      await consumer.cancelled;
      consumer.cancelled = undefined;
    }
    // Past amqplib's OpenTelemetry instrumentation: its consume span would sit beside mqkit's
    // process span in the message's trace.
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called on its channel, through .call
    const { consumerTag } = await uninstrumented(consumer.channel.consume).call(
      consumer.channel,
      this.#queue,
      (message) => {
        if (message) this.#onMessage(consumer, message);
        else this.#cancelledByBroker(consumer);
      },
      { noAck: false },
    );
    consumer.consumerTag = consumerTag;
  }

  async ack(messages: readonly RabbitMessage[]): Promise<SettleResults> {
    const results: Array<MqError | undefined> = new Array<MqError | undefined>(messages.length);
    const acking: Array<Promise<void>> = [];
    const channels = new Set<AckBatcher>();
    messages.forEach((m, i) => {
      results[i] = this.#check(m);
      if (results[i]) return;
      acking.push(m.consumer.acks.ack(m.delivery).catch((err: unknown) => void (results[i] = err as MqError)));
      channels.add(m.consumer.acks);
    });
    // Core already gathered this turn's acks into this call: send them now rather than on the
    // batcher's own next tick (it still works out the multiple-acks across them).
    for (const acks of channels) acks.flush();
    await Promise.all(acking);
    return results;
  }

  /**
   * Unordered: `delayMs` 0 is basic.nack(requeue), counted by the quorum queue; a delay sends a
   * copy to this group's TTL queue for its bucket (dead-lettering back into this queue only),
   * carrying the attempts so far, and acks the original once the copy is confirmed (a copy that
   * cannot be stored: the original is requeued at once, retried early rather than lost).
   *
   * Ordered (a message with a key): core's lanes alone cannot keep the key's order here, because
   * RabbitMQ has no per-key lock: a retried message that leaves its place (TTL queue) or goes back
   * (requeue) is overtaken by every later message of its key already on its way to this consumer
   * (buffered, on the wire, or still queued or published during the delay). So the message stays
   * unacked for the delay, then is requeued (counted in `x-delivery-count`, which survives a close
   * or crash; with a single active consumer it comes back here, ahead of the queue), and later
   * messages of its key, those core gives back included, wait in a barrier until it is back.
   */
  async nack(messages: readonly RabbitMessage[], delayMs: number): Promise<SettleResults> {
    const results: Array<MqError | undefined> = new Array<MqError | undefined>(messages.length);
    const copies: number[] = [];
    messages.forEach((m, i) => {
      results[i] = this.#check(m);
      if (results[i]) return;
      if (m.orderingKey !== undefined) this.#retryInOrder(m, delayMs);
      else if (delayMs > 0) copies.push(i);
      else results[i] = this.#requeue(m) ? undefined : channelLost();
    });
    if (copies.length > 0) {
      const outcomes = await this.#retryThroughDelayQueue(
        copies.map((i) => messages[i]!),
        delayMs,
      );
      copies.forEach((i, j) => (results[i] = outcomes[j]));
    }
    return results;
  }

  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    this.#onClose();
    this.#deps.manager.detach(this);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#buffer.wake();
    // Parking copies awaiting their confirm: let their originals' acks out first, otherwise the
    // original comes back to the next consumer besides the copy (a duplicate). Bounded.
    if (this.#parking.size > 0) await settledWithin(Promise.allSettled(this.#parking), PARKING_CLOSE_WAIT_MS);
    const consumer = this.#consumer;
    if (consumer) {
      consumer.closedByUs = true;
      // Acks core already handed over leave before the channel closes (else: redelivered).
      consumer.acks.flush();
      // After cancel-ok nothing more arrives.
      await this.#cancel(consumer);
      if (this.#consumer === consumer && this.#spec.ordered) this.#requeueInOrder();
    }
    this.#drop();
    // Closing the channel hands every other unacked message back to the queue.
    if (consumer) await consumer.channel.close().catch(() => {});
    await this.#rebuilding?.catch(() => {});
  }

  /**
   * Closing an ordered subscription: hands back key by key in order what core never got or gave
   * back (basic.nack requeue, after basic.cancel). Left to the channel close, RabbitMQ would return
   * them in delivery-tag order, putting a retried message behind the later ones of its key.
   */
  #requeueInOrder(): void {
    for (const barrier of this.#barriers.values()) {
      if (barrier.head && !this.#requeue(barrier.head)) return; // channel gone: all back already
      for (const m of barrier.blocked) if (!this.#requeue(m)) return;
    }
    for (const m of this.#buffer.drain()) if (!this.#requeue(m)) return;
  }

  /** Forgets the current channel's messages: they are (or will be) redelivered by the broker. */
  #drop(): void {
    this.#consumer = undefined;
    this.#buffer.drain();
    this.#barriers.clear();
  }

  #check(m: RabbitMessage): MqError | undefined {
    if (!this.#open) return new MqError('CLOSED', 'subscription is closed; the message will be redelivered');
    if (this.#consumer !== m.consumer) return channelLost();
    return undefined;
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
    const consumer: Consumer = { channel, acks: new AckBatcher(channel, channelLost), consumerTag: undefined, cancelled: undefined, closedByUs: false };
    channel.on('error', (err: unknown) => {
      this.#deps.logger.warn({ err: classifyError(err, `consumer channel of "${this.#queue}"`) }, 'rabbitmq closed a consumer channel; resubscribing');
    });
    channel.on('close', () => this.#channelClosed(consumer));
    // Current before basic.consume: amqplib may hand over the first messages before the consume
    // promise settles.
    this.#consumer = consumer;
    try {
      await channel.prefetch(this.#prefetch);
      await this.#consume(consumer);
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
    this.#fail(new MqError('NOT_FOUND', `RabbitMQ cancelled the consumer of "${this.#queue}" (queue deleted?); resubscribing`));
    consumer.closedByUs = true;
    this.#drop();
    consumer.acks.flush();
    void consumer.channel.close().catch(() => {});
    const link = this.#deps.manager.link;
    if (link && this.#open) this.#rebuild(link.epoch);
  }

  /** Reported by the next receive() (core logs and counts it). */
  #fail(error: MqError): void {
    this.#buffer.fail(error);
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
          if (!error.retryable) this.#fail(error);
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

  #onMessage(consumer: Consumer, delivery: ConsumeMessage): void {
    // Not current, or closing: unacked, the broker takes it back with the channel.
    if (this.#consumer !== consumer || !this.#open) return;
    const { fields } = delivery;
    consumer.acks.delivered(fields.deliveryTag);
    const received = fromDelivery(this.#spec.topic, delivery.content, delivery.properties, fields.redelivered, this.#queue, fields.routingKey);
    if (received.deliverAt !== undefined) {
      // A delayed publish, not due yet: parked in this group's delay queue, not handed to core.
      this.#park(consumer, delivery, received, 1);
      return;
    }
    this.#admit(this.#message(consumer, delivery, received));
  }

  #message(consumer: Consumer, delivery: ConsumeMessage, received: Received): RabbitMessage {
    const { envelope, priorAttempts, deliveryCount } = received;
    const { fields } = delivery;
    // RabbitMQ has no id of its own for a message: the envelope's (id, timestamp) is the
    // producer's, and an outbox relay re-sending a row after a crash repeats both; core would take
    // that second message for a copy of the acked first and ack it unseen. So each delivery gets
    // an id of its own. Core's ledger then never matches one: attempts are the broker's count
    // (x-delivery-count and the retry header, monotonic), and the ordered give-backs that count
    // nothing are this adapter's (its barrier), as before.
    const id = String(++deliveries);
    return {
      envelope,
      deliveryCount: priorAttempts + deliveryCount + 1,
      id,
      orderingKey: this.#spec.ordered ? envelope.key : undefined,
      meta: { queue: this.#queue, 'delivery-tag': String(fields.deliveryTag), redelivered: fields.redelivered ? 'true' : 'false' },
      delivery,
      consumer,
    };
  }

  /** Into the buffer for core, or behind an ordered retry of its key. */
  #admit(m: RabbitMessage): void {
    const barrier = m.orderingKey === undefined ? undefined : this.#barriers.get(m.orderingKey);
    if (barrier) {
      if (!barrier.head && m.delivery.fields.redelivered && m.envelope.id === barrier.headId) {
        // The ordered retry came back: it goes first, then the later ones of its key.
        this.#barriers.delete(m.orderingKey!);
        for (const next of [m, ...barrier.blocked]) this.#buffer.push(next);
      } else if (!barrier.head && (barrier.rotating || this.#blockedBehindRequeued() + 1 >= this.#prefetch)) {
        // Every prefetch slot would hold a message waiting for a requeued retry, so RabbitMQ could
        // not deliver it (it may queue messages returned after a failover ahead of it). This one
        // goes back too, behind the retry; it counts as a delivery (one more, never fewer).
        barrier.rotating = true;
        this.#requeue(m);
        return;
      } else {
        barrier.blocked.push(m);
        return;
      }
    } else {
      this.#buffer.push(m);
    }
  }

  /** Messages waiting for a retry already requeued (they hold prefetch slots until it returns). */
  #blockedBehindRequeued(): number {
    let n = 0;
    for (const barrier of this.#barriers.values()) if (!barrier.head) n += barrier.blocked.length;
    return n;
  }

  /** Ordered retry of `m` (see {@link RabbitReceiver.nack}). */
  #retryInOrder(m: RabbitMessage, delayMs: number): void {
    const key = m.orderingKey!;
    const existing = this.#barriers.get(key);
    if (existing) {
      // A later message of a key already waiting for a retry (core gave it back): it waits too.
      existing.blocked.push(m);
      return;
    }
    // Later messages of the key not yet taken by core wait for the retry as well.
    const blocked = this.#buffer.extract((b) => b.orderingKey === key);
    const barrier: Barrier = { headId: m.envelope.id, head: m, blocked, rotating: false };
    this.#barriers.set(key, barrier);
    const requeue = (): void => {
      barrier.head = undefined;
      // Channel gone: the broker returns it (counted) and the barrier goes with the channel.
      if (this.#consumer === m.consumer && this.#open) this.#requeue(m);
    };
    if (delayMs <= 0) {
      requeue();
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      requeue();
    }, delayMs);
    this.#timers.add(timer);
  }

  /** basic.nack(requeue); false when the channel is gone (the broker has it back). */
  #requeue(m: RabbitMessage): boolean {
    return this.#settleOn(m, (ch) => ch.nack(m.delivery, false, true));
  }

  /**
   * Settles one message directly on its channel and tells the ack batcher, whose `multiple`
   * acks may then pass its tag. amqplib throws only when the channel is closed already.
   */
  #settleOn(m: { consumer: Consumer; delivery: ConsumeMessage; id?: string }, action: (channel: Channel) => void): boolean {
    try {
      action(m.consumer.channel);
    } catch {
      return false;
    }
    m.consumer.acks.settled(m.delivery.fields.deliveryTag);
    return true;
  }

  /** Copies of `messages` into this group's delay queue, due in `delayMs`; the originals acked. */
  async #retryThroughDelayQueue(messages: readonly RabbitMessage[], delayMs: number): Promise<Array<MqError | undefined>> {
    const { publisher, logger } = this.#deps;
    let errors: Array<MqError | undefined>;
    try {
      const routingKey = await this.#delayQueue(delayMs);
      errors = await publisher.publishAll(
        messages.map((m) => {
          const options = toPublishOptions(m.envelope, m.deliveryCount);
          options.expiration = String(Math.ceil(delayMs));
          return { exchange: '', routingKey, content: bodyOf(m), options };
        }),
        RETRY_CONFIRM_TIMEOUT_MS,
      );
    } catch (err) {
      const error = classifyError(err, `delaying a retry of "${this.#queue}"`);
      errors = messages.map(() => error);
    }
    return messages.map((m, i) => {
      // The channel was lost: the original comes back from the broker; a stored copy makes it a
      // duplicate at worst.
      if (this.#consumer !== m.consumer) return channelLost();
      if (errors[i]) {
        logger.warn({ err: errors[i], id: m.envelope.id, queue: this.#queue }, 'cannot store a delayed retry; requeueing the message now');
        return this.#requeue(m) ? undefined : channelLost();
      }
      return this.#settleOn(m, (ch) => ch.ack(m.delivery)) ? undefined : channelLost();
    });
  }

  async #delayQueue(delayMs: number): Promise<string> {
    const { topology } = this.#deps;
    const bucket = delayBucket(delayMs);
    return topology.enabled ? topology.retryDelay(this.#queue, bucket) : retryDelayQueueName(this.#queue, bucket);
  }

  #park(consumer: Consumer, delivery: ConsumeMessage, received: Received, attempt: number): void {
    const parking = this.#defer(consumer, delivery, received, attempt).finally(() => this.#parking.delete(parking));
    this.#parking.add(parking);
  }

  /**
   * A delayed publish reached this group before its time: a copy goes to the group's delay queue
   * for the rest of the delay (at-least-once dead-lettering back into this queue), then the
   * original is acked. If the copy cannot be stored, the original stays unacked and the copy is
   * tried again after a backoff: never delivered early, never dropped (a lost channel hands it
   * back to the broker).
   */
  async #defer(consumer: Consumer, delivery: ConsumeMessage, received: Received, attempt: number): Promise<void> {
    const { publisher, logger } = this.#deps;
    const { envelope, priorAttempts, deliverAt } = received;
    const remaining = Math.ceil((deliverAt ?? 0) - Date.now());
    if (remaining <= 0) {
      // Due by now (e.g. after a failed parking attempt): handled like any other message.
      if (this.#consumer === consumer && this.#open) this.#admit(this.#message(consumer, delivery, received));
      return;
    }
    let error: MqError | undefined;
    try {
      const options = toPublishOptions(envelope, priorAttempts);
      options.expiration = String(remaining);
      [error] = await publisher.publishAll([{ exchange: '', routingKey: await this.#delayQueue(remaining), content: delivery.content, options }], RETRY_CONFIRM_TIMEOUT_MS);
    } catch (err) {
      error = classifyError(err, `delaying a message of "${this.#queue}"`);
    }
    // A closing receiver still acks a stored copy's original (close() waits for it); a lost
    // channel cannot: the broker redelivers the original, the copy makes it a duplicate at worst.
    if (this.#consumer !== consumer) return;
    if (error) {
      if (!this.#open) return; // closing: the original goes back to the queue, no copy was stored
      logger.warn({ err: error, id: envelope.id, queue: this.#queue }, 'cannot park a delayed message in its delay queue; trying again');
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        if (this.#consumer === consumer && this.#open) this.#park(consumer, delivery, received, attempt + 1);
      }, backoffDelay(DEFER_RETRY_POLICY, attempt));
      this.#timers.add(timer);
      return;
    }
    this.#settleOn({ consumer, delivery }, (ch) => ch.ack(delivery));
  }
}

function bodyOf(m: RabbitMessage): Buffer {
  const { body } = m.envelope;
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}
