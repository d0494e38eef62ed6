/**
 * The consumer loop of every pull driver ({@link DriverReceiver}), written once: receive loops
 * with backoff, the in-flight budget, per-key lanes, batched settles, lease heartbeats, attempt
 * accounting, redelivery while handled, and giving messages back on close. It feeds the
 * subscription runtime through the same {@link DeliverySink} a push driver uses.
 */
import { processAttemptLedger, type AttemptLedger } from './attempt-ledger.ts';
import { backoffDelay, type BackoffPolicy } from './backoff.ts';
import type { DeliverySink, DriverDelivery, DriverReceiver, DriverSubscription, ReceivedMessage, SubscriptionSpec } from './driver/driver.ts';
import type { Envelope } from './message.ts';
import { MqError, toMqError } from './errors.ts';
import type { Logger } from './logger.ts';
import { OrderedLanes } from './ordered-lanes.ts';
import { SettleBatcher } from './settle-batcher.ts';
import { KeyIndex, Slots } from './slots.ts';

/** Backoff between failed receive calls (a broker down, a network cut). */
const RECEIVE_BACKOFF: BackoffPolicy = { initialDelayMs: 200, maxDelayMs: 5_000, multiplier: 2, jitter: true };
/** A failing receive loop reports its first failure and then every this many. */
const REPORT_EVERY = 10;
/** Shortest heartbeat tick: a lease is renewed at most this late. */
const MIN_TICK_MS = 250;

/**
 * Short stand-ins for receiver scopes in ledger keys, one per scope for the process: a key is
 * made and hashed several times per message, and a scope often holds a whole broker URL.
 */
const scopePrefixes = new Map<string, string>();

/** @internal the ledger key of message `id` of a receiver with `scope`. */
export function ledgerKey(scope: string, id: string): string {
  return scopePrefix(scope) + id;
}

function scopePrefix(scope: string): string {
  let prefix = scopePrefixes.get(scope);
  if (prefix === undefined) scopePrefixes.set(scope, (prefix = `${scopePrefixes.size}:`));
  return prefix;
}

const messageOf = <M extends ReceivedMessage>(held: Held<M>): M => held.message;

/** What a {@link Held} settles through: its subscription's private settle paths. */
interface HeldOps<M extends ReceivedMessage> {
  /** The ledger-key prefix of the receiver's scope. */
  readonly scope: string;
  settle(held: Held<M>, nackDelayMs: number | undefined): Promise<void>;
  /** Called as a method of the held message; undefined when the receiver has no native dead-lettering. */
  readonly deadLetter: ((this: Held<M>, envelope: Envelope) => Promise<void>) | undefined;
}

/**
 * A received message until it is settled or given back, and the {@link DriverDelivery} the
 * runtime sees: one object per message, with methods rather than closures.
 */
class Held<M extends ReceivedMessage> implements DriverDelivery {
  /** The newest copy: a redelivery while handled brings a fresh receipt handle. */
  message: M;
  readonly envelope: Envelope;
  /** The message id (the first copy's: a redelivery has the same). */
  readonly id: string;
  /** Its ordered lane (undefined: unordered subscription). */
  readonly orderingKey: string | undefined;
  readonly meta: Readonly<Record<string, string>> | undefined;
  /** Native dead-lettering, when the receiver has it (see {@link DriverDelivery.deadLetter}). */
  readonly deadLetter: ((this: Held<M>, envelope: Envelope) => Promise<void>) | undefined;
  /** Handed to core (an ordered lane holds later messages back). */
  delivered = false;
  /** The attempt it was handed over as. */
  attempt = 0;
  settled = false;
  /** When the heartbeat extends its lease next (epoch ms). */
  extendAt: number;
  /** A lease extension on its way: a settle waits for it, so each uses the newest handle. */
  extending: Promise<void> | undefined = undefined;
  /** Its index in {@link Slots} (-1: not held). */
  slot = -1;
  readonly #ops: HeldOps<M>;

  constructor(ops: HeldOps<M>, message: M, key: string, lane: string | undefined, extendAt: number) {
    this.#ops = ops;
    this.message = message;
    this.envelope = message.envelope;
    this.id = key;
    this.orderingKey = lane;
    this.meta = message.meta;
    this.extendAt = extendAt;
    this.deadLetter = ops.deadLetter;
  }

  /** Its key in the attempt ledger: the receiver's scope and the message id (made when needed). */
  get key(): string {
    return this.#ops.scope + this.id;
  }

  ack(): Promise<void> {
    return this.#ops.settle(this, undefined);
  }

  nack(delayMs: number): Promise<void> {
    return this.#ops.settle(this, delayMs);
  }
}

/** @internal what {@link PullSubscription} needs besides the receiver. */
export interface PullSubscriptionArgs {
  readonly spec: SubscriptionSpec;
  readonly sink: DeliverySink;
  readonly logger: Logger;
  /** @default the process-wide ledger */
  readonly ledger?: AttemptLedger;
}

export class PullSubscription<M extends ReceivedMessage> implements DriverSubscription {
  readonly #receiver: DriverReceiver<M>;
  readonly #spec: SubscriptionSpec;
  readonly #sink: DeliverySink;
  readonly #logger: Logger;
  readonly #ledger: AttemptLedger;
  readonly #scope: string;
  readonly #batchSize: number;
  /** Least room worth a receive call while messages are outstanding (a quarter of the budget, at most a batch). */
  readonly #lowWater: number;
  readonly #extendEveryMs: number;
  /** The receiver has leases to extend. */
  readonly #leased: boolean;
  readonly #acks: SettleBatcher<'ack', Held<M>>;
  /** Keyed by delay. */
  readonly #nacks: SettleBatcher<number, Held<M>>;
  /** Give-backs of messages no handler saw, keyed by delay (see {@link DriverReceiver.release}). */
  readonly #releases: SettleBatcher<number, Held<M>>;
  /**
   * Give-backs go through nack(), so the broker counts them as deliveries: the ledger discounts
   * them. A driver with release() gives back uncounted (its deliveryCount leaves them out).
   */
  readonly #countsGiveBacks: boolean;
  readonly #extends: SettleBatcher<number, Held<M>>;
  /** Whether acks are recorded in the ledger ({@link DriverReceiver.redeliversAcked}). */
  readonly #remembersAcks: boolean;
  readonly #ops: HeldOps<M>;
  // Neither a Set nor a Map: see slots.ts.
  readonly #held = new Slots<Held<M>>();
  readonly #byKey = new KeyIndex<Held<M>>();
  readonly #lanes = new OrderedLanes<Held<M>>();
  /** Give-backs of an ordered lane's successors, some waiting for a lease extension. */
  readonly #givingBack = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  /** Loops waiting for room, resume or the end of a backoff. */
  readonly #sleepers = new Set<() => void>();
  #loops: Promise<void> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  /** Messages asked for by receive calls still open (counted against maxInFlight). */
  #reserved = 0;
  #paused = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Since when (epoch ms) receive calls fail without one succeeding; undefined while they work (health). */
  receiveFailingSince: number | undefined = undefined;

  constructor(receiver: DriverReceiver<M>, args: PullSubscriptionArgs) {
    this.#receiver = receiver;
    this.#spec = args.spec;
    this.#sink = args.sink;
    this.#logger = args.logger;
    this.#ledger = args.ledger ?? processAttemptLedger;
    this.#scope = scopePrefix(receiver.scope);
    this.#batchSize = Math.max(1, receiver.batchSize);
    this.#lowWater = Math.min(this.#batchSize, Math.max(1, Math.ceil(args.spec.maxInFlight / 4)));
    this.#leased = receiver.leaseMs !== undefined && receiver.extend !== undefined;
    this.#extendEveryMs = receiver.leaseMs === undefined ? Number.POSITIVE_INFINITY : Math.max(MIN_TICK_MS, Math.floor(receiver.leaseMs / 3));
    const settleMax = receiver.settleBatchSize ?? this.#batchSize;
    this.#acks = new SettleBatcher((_, helds) => receiver.ack(helds.map(messageOf)), settleMax);
    this.#nacks = new SettleBatcher((delayMs, helds) => receiver.nack(helds.map(messageOf), delayMs), settleMax);
    this.#countsGiveBacks = receiver.release === undefined;
    this.#releases = new SettleBatcher((delayMs, helds) => (receiver.release ? receiver.release(helds.map(messageOf), delayMs) : receiver.nack(helds.map(messageOf), delayMs)), settleMax);
    this.#extends = new SettleBatcher((leaseMs, helds) => receiver.extend!(helds.map(messageOf), leaseMs), settleMax);
    this.#remembersAcks = receiver.redeliversAcked === true;
    const deadLetter = (held: Held<M>, envelope: Envelope): Promise<void> => this.#deadLetter(held, envelope);
    this.#ops = {
      scope: this.#scope,
      settle: (held, nackDelayMs) => this.#settle(held, nackDelayMs),
      deadLetter: receiver.deadLetter
        ? function (this: Held<M>, envelope: Envelope) {
            return deadLetter(this, envelope);
          }
        : undefined,
    };
  }

  /** Starts the receive loops: one when ordered (messages arrive in the broker's order). */
  start(): this {
    const loops = this.#spec.ordered ? 1 : Math.max(1, this.#receiver.concurrency ?? 1);
    this.#loops = Promise.all(Array.from({ length: loops }, () => this.#loop())).then(() => undefined);
    return this;
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

  async #loop(): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      const room = this.#room();
      // Wait for a worthwhile batch while others are outstanding: freed one by one, the room
      // would otherwise be taken one message per receive call (a round trip, or for a push
      // client's buffer a call's overhead, per message).
      if (this.#paused || room <= 0 || (room < this.#lowWater && this.#held.size + this.#reserved > 0)) {
        await new Promise<void>((resolve) => this.#sleepers.add(resolve));
        continue;
      }
      const want = Math.min(this.#batchSize, room);
      let messages: readonly M[];
      this.#reserved += want;
      try {
        messages = await this.#receiver.receive(want, this.#abort.signal);
        failures = 0;
        this.receiveFailingSince = undefined;
      } catch (err) {
        if (this.#closed) return;
        failures += 1;
        this.receiveFailingSince ??= Date.now();
        const error = toMqError(err);
        if (!error.retryable || failures % REPORT_EVERY === 1) this.#sink.error(error);
        await this.#sleep(backoffDelay(RECEIVE_BACKOFF, failures));
        continue;
      } finally {
        this.#reserved -= want;
      }
      for (const message of messages) this.#accept(message);
      // Room this call reserved but did not use is free again for a loop waiting for it.
      if (messages.length < want) this.#wake();
      // A receive that came back empty at once must not turn this loop into a microtask spin
      // that starves timers and I/O.
      if (messages.length === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** What the in-flight budget leaves for receiving now. */
  #room(): number {
    return this.#spec.maxInFlight - this.#held.size - this.#reserved;
  }

  #wake(): void {
    if (this.#sleepers.size === 0) return;
    const sleepers = [...this.#sleepers];
    this.#sleepers.clear();
    for (const wake of sleepers) wake();
  }

  /** Sleeps `ms`, or less when woken (close, resume). */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#sleepers.add(wake);
    });
  }

  #accept(message: M): void {
    const id = message.id;
    const current = this.#byKey.get(id);
    if (current && !current.settled && !this.#closed) {
      // Redelivered while still held (a lease extension failed, say during a broker restart):
      // the new copy's handle is the valid one, so the running handler settles with it.
      current.message = message;
      this.#logger.debug({ topic: this.#spec.topic, id: message.id }, 'redelivered while being handled; keeping the newest copy');
      return;
    }
    if (this.#remembersAcks && this.#ledger.acked(this.#scope + id)) {
      // Acked here before (e.g. a FIFO queue popped again from an earlier message): its handler
      // already ran to an ack, so this copy is acked too, out of the handler's sight.
      this.#acks.add('ack', new Held(this.#ops, message, id, undefined, 0)).catch((err: unknown) => this.#logger.debug({ err, topic: this.#spec.topic, id: message.id }, 'acking a copy of an acked message failed; it comes back'));
      return;
    }
    const lane = this.#spec.ordered ? (message.orderingKey ?? message.envelope.key) : undefined;
    const held = new Held(this.#ops, message, id, lane, this.#leased ? Date.now() + this.#extendEveryMs : 0);
    this.#held.add(held);
    this.#byKey.set(id, held);
    this.#startHeartbeat();
    if (this.#closed) return; // given back by close()
    if (lane === undefined || this.#lanes.add(lane, held)) this.#deliver(held);
  }

  #deliver(held: Held<M>): void {
    held.delivered = true;
    // The ledger is empty unless messages went back: then no key is made and nothing looked up.
    held.attempt = this.#ledger.size === 0 ? Math.max(1, held.message.deliveryCount) : this.#ledger.attempt(held.key, held.message.deliveryCount);
    this.#sink.deliver(held);
  }

  /**
   * Acks (`nackDelayMs` undefined) or nacks one held message. Not an async function: this runs
   * per message, and the bookkeeping after the broker answered is a batcher hook, not a promise
   * reaction per message.
   */
  #settle(held: Held<M>, nackDelayMs: number | undefined): Promise<void> {
    try {
      this.#claim(held);
    } catch (err) {
      return Promise.reject(err);
    }
    // A lease extension on its way: settle after it, with the newest handle.
    if (held.extending) return held.extending.then(() => this.#send(held, nackDelayMs));
    return this.#send(held, nackDelayMs);
  }

  #send(held: Held<M>, nackDelayMs: number | undefined): Promise<void> {
    return nackDelayMs === undefined ? this.#acks.add('ack', held, this.#afterAck) : this.#nacks.add(nackDelayMs, held, this.#afterNack);
  }

  readonly #afterAck = (held: Held<M>, error: MqError | undefined): void => {
    if (error === undefined) {
      this.#ledgerAcked(held);
      this.#release(held, undefined);
    } else {
      this.#ledger.handedBack(held.key, held.attempt);
      // A failed ack means the message comes back: in an ordered lane its successors wait too.
      this.#release(held, 0);
    }
  };

  /** An acked message: remembered as acked where copies may come back, else forgotten. */
  #ledgerAcked(held: Held<M>): void {
    if (this.#remembersAcks) this.#ledger.settled(held.key);
    else if (this.#ledger.size > 0) this.#ledger.forget(held.key);
  }

  readonly #afterNack = (held: Held<M>, _error: MqError | undefined, delayMs: number): void => {
    this.#ledger.handedBack(held.key, held.attempt);
    this.#release(held, delayMs);
  };

  async #deadLetter(held: Held<M>, envelope: Envelope): Promise<void> {
    this.#claim(held);
    try {
      if (held.extending) await held.extending;
      await this.#receiver.deadLetter!(held.message, envelope);
    } catch (err) {
      // Still held: core hands it back with a delay (see the runtime's dead-lettering).
      held.settled = false;
      throw err;
    }
    this.#ledgerAcked(held);
    this.#release(held, undefined);
  }

  #claim(held: Held<M>): void {
    if (this.#closed || held.settled) {
      throw new MqError('CLOSED', `subscription to ${this.#spec.topic} is closed; the message will be redelivered`);
    }
    held.settled = true;
  }

  /**
   * Forgets a settled message; in an ordered lane hands over the next one, or after a nack gives
   * the lane's later messages back too, so the broker redelivers them after the retried one.
   */
  #release(held: Held<M>, nackedForMs: number | undefined): void {
    this.#forget(held);
    if (held.orderingKey !== undefined) {
      if (nackedForMs === undefined) {
        const next = this.#lanes.acked(held.orderingKey, held);
        if (next && !next.delivered && !this.#closed) this.#deliver(next);
      } else {
        for (const later of this.#lanes.nacked(held.orderingKey, held)) {
          later.settled = true;
          this.#forget(later);
          if (!later.delivered && this.#countsGiveBacks) this.#ledger.givenBack(later.key);
          // After a lease extension on its way, as a settle waits: the give-back needs the newest handle.
          const giveBack = (): Promise<void> => this.#releases.add(nackedForMs, later);
          const done = (later.extending ? later.extending.then(giveBack) : giveBack()).catch((err: unknown) => this.#logger.debug({ err, topic: this.#spec.topic }, 'giving back a held message failed; it returns when its lease ends'));
          this.#givingBack.add(done);
          void done.finally(() => this.#givingBack.delete(done));
        }
      }
    }
    if (this.#room() >= this.#lowWater) this.#wake();
  }

  #forget(held: Held<M>): void {
    this.#held.delete(held);
    if (this.#byKey.get(held.id) === held) this.#byKey.delete(held.id);
  }

  /**
   * Extends each held message's lease every third of it. One timer for all, ticking a few times
   * per period (an extension is at most a tick late, well inside the lease); it stops when
   * nothing is held.
   */
  #startHeartbeat(): void {
    if (this.#heartbeat !== undefined || this.#closed || !this.#receiver.extend || this.#receiver.leaseMs === undefined) return;
    const tick = Math.max(MIN_TICK_MS, Math.floor(this.#extendEveryMs / 4));
    this.#heartbeat = setInterval(() => this.#extendDue(), tick);
    this.#heartbeat.unref();
  }

  #extendDue(): void {
    if (this.#held.size === 0 || this.#closed) {
      clearInterval(this.#heartbeat);
      this.#heartbeat = undefined;
      return;
    }
    const now = Date.now();
    const leaseMs = this.#receiver.leaseMs!;
    for (const held of this.#held.list()) {
      if (held.settled || held.extending || held.extendAt > now) continue;
      held.extending = this.#extends
        .add(leaseMs, held)
        .catch((err: unknown) => {
          if (!held.settled) this.#logger.warn({ err, topic: this.#spec.topic, group: this.#spec.group }, 'extending a lease failed; the message may be redelivered');
        })
        .finally(() => {
          held.extending = undefined;
          held.extendAt = Date.now() + this.#extendEveryMs;
        });
    }
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort(new MqError('CLOSED', 'subscription closed'));
    this.#wake();
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    // A receive in flight may still bring messages: wait for it so they are given back too.
    await this.#loops;
    const unsettled = this.#held.list().filter((held) => !held.settled);
    for (const held of unsettled) {
      held.settled = true;
      this.#forget(held);
      // Never reached a handler: not an attempt.
      if (held.delivered) this.#ledger.handedBack(held.key, held.attempt);
      else if (this.#countsGiveBacks) this.#ledger.givenBack(held.key);
    }
    await Promise.all([...unsettled.map((held) => held.extending), ...this.#givingBack]);
    // A delivery a handler saw and left unsettled counts (as after a crash); the others do not.
    const givenBack = Promise.allSettled(unsettled.map((held) => (held.delivered ? this.#nacks : this.#releases).add(0, held)));
    await Promise.all([this.#acks.drain(), this.#nacks.drain(), this.#releases.drain(), this.#extends.drain()]);
    const failed = (await givenBack).filter((r) => r.status === 'rejected').length;
    if (failed > 0) this.#logger.warn({ topic: this.#spec.topic, group: this.#spec.group, failed }, 'could not give back some messages on close; they return when their lease ends');
    try {
      await this.#receiver.close();
    } catch (err) {
      this.#logger.warn({ err, topic: this.#spec.topic, group: this.#spec.group }, 'closing the receiver failed');
    }
  }
}
