/**
 * A whole small driver on the pull contract, the one the core README shows: an in-process queue
 * with leases (SQS's visibility timeout in miniature). It exists to document the contract and
 * to run core's lease paths (extend, expiry, stale receipts) through the whole conformance suite;
 * use `memory://` to test applications.
 */
import { MqError, type Capabilities, type Driver, type DriverReceiver, type Envelope, type ReceivedMessage, type SendOutcome, type SubscriptionSpec } from '@mqkit/core/driver';

interface Stored {
  /**
   * The broker's id of this message, the same across its redeliveries. Not the envelope id: a
   * producer may publish one id twice, and those are two messages.
   */
  readonly id: string;
  readonly envelope: Envelope;
  visibleAt: number;
  receives: number;
  /** The receipt of the latest receive: a settle with an older one is refused. */
  receipt: number;
}

/** What the lease driver hands core: the message plus the receipt that settles it. */
interface LeasedMessage extends ReceivedMessage {
  readonly receipt: number;
}

export const LEASE_DRIVER_CAPABILITIES: Capabilities = {
  delay: { kind: 'native', maxMs: 3_600_000, precisionMs: 50 },
  ordering: 'none',
  transactions: false,
  maxMessageBytes: 256 * 1024,
  maxBatchSize: 100,
  deliveryCount: 'native',
  topicPattern: /^[A-Za-z0-9_.-]{1,200}$/,
  maxHeaders: Number.POSITIVE_INFINITY,
};

/** One in-process broker: per topic the published log, per group its queue. */
export class LeaseBroker {
  readonly #topics = new Map<string, { log: Array<{ id: string; envelope: Envelope }>; groups: Map<string, Stored[]> }>();
  #receipts = 0;
  #ids = 0;

  publish(envelope: Envelope): void {
    const topic = this.#topic(envelope.topic);
    const entry = { id: String(++this.#ids), envelope };
    topic.log.push(entry);
    for (const queue of topic.groups.values()) queue.push(stored(entry));
  }

  /** A group's queue, created from the topic's log (new groups start at the beginning). */
  queue(topicName: string, group: string): Stored[] {
    const topic = this.#topic(topicName);
    let queue = topic.groups.get(group);
    if (!queue) topic.groups.set(group, (queue = topic.log.map(stored)));
    return queue;
  }

  nextReceipt(): number {
    return ++this.#receipts;
  }

  #topic(name: string) {
    let topic = this.#topics.get(name);
    if (!topic) this.#topics.set(name, (topic = { log: [], groups: new Map() }));
    return topic;
  }
}

function stored({ id, envelope }: { id: string; envelope: Envelope }): Stored {
  return { id, envelope, visibleAt: Date.now() + (envelope.delayMs ?? 0), receives: 0, receipt: 0 };
}

class LeaseReceiver implements DriverReceiver<LeasedMessage> {
  readonly batchSize = 10;
  readonly leaseMs: number;
  readonly scope: string;
  readonly #broker: LeaseBroker;
  readonly #queue: Stored[];

  constructor(broker: LeaseBroker, spec: SubscriptionSpec, leaseMs: number) {
    this.#broker = broker;
    this.#queue = broker.queue(spec.topic, spec.group);
    this.leaseMs = leaseMs;
    this.scope = `lease\u0000${spec.topic}\u0000${spec.group}`;
  }

  /** Polls every 20 ms for visible messages (a real driver long-polls its broker). */
  async receive(max: number, signal: AbortSignal): Promise<readonly LeasedMessage[]> {
    for (;;) {
      const now = Date.now();
      const taken = this.#queue.filter((s) => s.visibleAt <= now).slice(0, max);
      if (taken.length > 0 || signal.aborted) {
        return taken.map((s) => {
          s.visibleAt = now + this.leaseMs;
          s.receives += 1;
          s.receipt = this.#broker.nextReceipt();
          return { envelope: s.envelope, deliveryCount: s.receives, id: s.id, receipt: s.receipt };
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async ack(messages: readonly LeasedMessage[]) {
    return messages.map((m) => this.#withReceipt(m, (s) => this.#queue.splice(this.#queue.indexOf(s), 1)));
  }

  async nack(messages: readonly LeasedMessage[], delayMs: number) {
    return messages.map((m) => this.#withReceipt(m, (s) => (s.visibleAt = Date.now() + delayMs)));
  }

  async extend(messages: readonly LeasedMessage[], leaseMs: number) {
    return messages.map((m) => this.#withReceipt(m, (s) => (s.visibleAt = Date.now() + leaseMs)));
  }

  async close(): Promise<void> {}

  /** Applies `action` when the receipt is still the latest one, else reports why not. */
  #withReceipt(message: LeasedMessage, action: (s: Stored) => unknown): MqError | undefined {
    const s = this.#queue.find((q) => q.receipt === message.receipt);
    if (!s) return new MqError('NOT_FOUND', 'receipt expired: the message was received again or is gone');
    action(s);
    return undefined;
  }
}

/** The driver: `send` appends, `receiver` opens a group's queue with `leaseMs` leases. */
export class LeaseDriver implements Driver {
  readonly name = 'lease';
  readonly capabilities = LEASE_DRIVER_CAPABILITIES;
  readonly native: LeaseBroker;
  readonly #leaseMs: number;

  constructor(broker = new LeaseBroker(), leaseMs = 1_000) {
    this.native = broker;
    this.#leaseMs = leaseMs;
  }

  async send(envelopes: readonly Envelope[]): Promise<SendOutcome[]> {
    return envelopes.map((envelope) => {
      this.native.publish({ ...envelope, body: new Uint8Array(envelope.body) });
      return { ok: true };
    });
  }

  async receiver(spec: SubscriptionSpec): Promise<LeaseReceiver> {
    return new LeaseReceiver(this.native, spec, this.#leaseMs);
  }

  async close(): Promise<void> {}
}
