import type { Envelope, MqError } from '@mqkit/core/driver';

/** Deep enough copy that a consumer cannot change what the broker stores, or the reverse. */
export function copy(envelope: Envelope): Envelope {
  return { ...envelope, headers: { ...envelope.headers }, body: new Uint8Array(envelope.body) };
}


let brokerIds = 0;

/** One message waiting in (or held from) a consumer group's queue. */
interface QueuedMessage {
  readonly seq: number;
  readonly envelope: Envelope;
  attempt: number;
  visibleAt: number;
  holder: MemoryConsumer | undefined;
  /**
   * Given back with no delay and not deliverable again until the next macrotask: a consumer that
   * nacks every delivery must not keep the event loop in microtasks (timers, I/O, close()).
   */
  parked?: boolean;
}

/** A consumer attached to a group: receives messages through `onMessage`. */
export interface MemoryConsumer {
  readonly maxInFlight: number;
  held: number;
  paused: boolean;
  onMessage(message: HeldMessage): void;
}

/** A message handed to a consumer; settle it exactly once. */
export interface HeldMessage {
  readonly envelope: Envelope;
  readonly attempt: number;
  readonly seq: number;
}

/**
 * One consumer group's queue: competing consumers, redelivery on nack or on a consumer that
 * leaves without acking, delay, optional per-key FIFO (a key's next message waits until the one
 * before it is acked or dead-lettered, including across nacks).
 */
class GroupQueue {
  readonly messages: QueuedMessage[] = [];
  readonly consumers: MemoryConsumer[] = [];
  ordered = false;
  #rr = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #scheduled = false;

  push(message: QueuedMessage): void {
    this.messages.push(message);
    this.schedule();
  }

  /** Dispatch on the next tick, once, however many changes happen in this one. */
  schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#dispatch();
    });
  }

  #nextConsumer(): MemoryConsumer | undefined {
    const n = this.consumers.length;
    for (let i = 0; i < n; i += 1) {
      const c = this.consumers[(this.#rr + i) % n]!;
      if (!c.paused && c.held < c.maxInFlight) {
        this.#rr = (this.#rr + i + 1) % n;
        return c;
      }
    }
    return undefined;
  }

  #dispatch(): void {
    const now = Date.now();
    let nextVisible = Infinity;
    const blockedKeys = new Set<string>();
    for (const message of this.messages) {
      const key = this.ordered ? message.envelope.key : undefined;
      if (key !== undefined) {
        if (blockedKeys.has(key)) continue;
        blockedKeys.add(key);
      }
      if (message.holder || message.parked) continue;
      if (message.visibleAt > now) {
        nextVisible = Math.min(nextVisible, message.visibleAt);
        continue;
      }
      const consumer = this.#nextConsumer();
      if (!consumer) break;
      message.holder = consumer;
      consumer.held += 1;
      consumer.onMessage({ envelope: message.envelope, attempt: message.attempt, seq: message.seq });
    }
    if (nextVisible < this.#timerAt) {
      clearTimeout(this.#timer);
      this.#timerAt = nextVisible;
      this.#timer = setTimeout(() => {
        this.#timerAt = Infinity;
        this.schedule();
      }, Math.max(0, nextVisible - now));
      this.#timer.unref();
    }
  }

  #find(seq: number, consumer: MemoryConsumer): number {
    const i = this.messages.findIndex((m) => m.seq === seq);
    if (i < 0 || this.messages[i]!.holder !== consumer) return -1;
    return i;
  }

  /** Removes a held message (ack). False when it is no longer held by `consumer`. */
  remove(seq: number, consumer: MemoryConsumer): boolean {
    const i = this.#find(seq, consumer);
    if (i < 0) return false;
    this.messages.splice(i, 1);
    consumer.held -= 1;
    this.schedule();
    return true;
  }

  /** Gives a held message back for redelivery after `delayMs`, counting an attempt. */
  release(seq: number, consumer: MemoryConsumer, delayMs: number): boolean {
    const i = this.#find(seq, consumer);
    if (i < 0) return false;
    const message = this.messages[i]!;
    message.holder = undefined;
    message.attempt += 1;
    message.visibleAt = Date.now() + delayMs;
    consumer.held -= 1;
    if (delayMs > 0) {
      this.schedule();
    } else {
      // A zero delay still waits for the event loop to turn (the delayed case waits on a timer).
      message.parked = true;
      setImmediate(() => {
        message.parked = false;
        this.schedule();
      });
    }
    return true;
  }

  /** Takes a held message back without counting an attempt (it never reached the consumer). */
  unclaim(seq: number, consumer: MemoryConsumer): boolean {
    const i = this.#find(seq, consumer);
    if (i < 0) return false;
    this.messages[i]!.holder = undefined;
    consumer.held -= 1;
    this.schedule();
    return true;
  }

  detach(consumer: MemoryConsumer): void {
    const i = this.consumers.indexOf(consumer);
    if (i >= 0) this.consumers.splice(i, 1);
    for (const message of this.messages) {
      if (message.holder === consumer) {
        message.holder = undefined;
        message.attempt += 1;
        consumer.held -= 1;
      }
    }
    this.schedule();
  }
}

interface TopicState {
  /** Everything published, so that a group created later starts from the beginning (as Kafka's `earliest`). */
  readonly log: Array<{ seq: number; envelope: Envelope; visibleAt: number }>;
  readonly groups: Map<string, GroupQueue>;
}

/**
 * The state of one in-memory broker: topics, their retained log, consumer groups. Shared by every
 * client connected to the same `memory://name` in this process.
 */
export class MemoryBroker {
  /** Unique in this process (brokers of one name are one broker). */
  readonly id = ++brokerIds;
  readonly #topics = new Map<string, TopicState>();
  #seq = 0;
  #sendFailures: Array<MqError> = [];

  #topic(name: string): TopicState {
    let topic = this.#topics.get(name);
    if (!topic) {
      topic = { log: [], groups: new Map() };
      this.#topics.set(name, topic);
    }
    return topic;
  }

  /**
   * Makes the next `errors.length` sends fail, one message each, with these errors: for testing
   * how publishers handle broker failures.
   */
  injectSendFailures(...errors: MqError[]): void {
    this.#sendFailures.push(...errors);
  }

  /** @internal the next injected failure, if any. */
  takeSendFailure(): MqError | undefined {
    return this.#sendFailures.shift();
  }

  /** Appends to the topic and to each of its groups. Durable as soon as it returns. */
  publish(envelope: Envelope): string {
    const topic = this.#topic(envelope.topic);
    const seq = ++this.#seq;
    const visibleAt = Date.now() + (envelope.delayMs ?? 0);
    topic.log.push({ seq, envelope, visibleAt });
    for (const group of topic.groups.values()) group.push({ seq, envelope, attempt: 1, visibleAt, holder: undefined });
    return String(seq);
  }

  /** Attaches a consumer to `topic`/`group`, creating the group (with the retained log) if new. */
  attach(topicName: string, groupName: string, consumer: MemoryConsumer, ordered: boolean): GroupHandle {
    const group = this.#group(this.#topic(topicName), groupName);
    group.ordered ||= ordered;
    group.consumers.push(consumer);
    group.schedule();
    const g = group;
    return {
      ack: (seq) => g.remove(seq, consumer),
      nack: (seq, delayMs) => g.release(seq, consumer, delayMs),
      unclaim: (seq) => g.unclaim(seq, consumer),
      detach: () => g.detach(consumer),
      wake: () => g.schedule(),
    };
  }

  #group(topic: TopicState, groupName: string): GroupQueue {
    let group = topic.groups.get(groupName);
    if (!group) {
      group = new GroupQueue();
      for (const { seq, envelope, visibleAt } of topic.log) group.messages.push({ seq, envelope, attempt: 1, visibleAt, holder: undefined });
      topic.groups.set(groupName, group);
    }
    return group;
  }

  /** Creates `topic` and its groups when missing (a group starts with the retained log, as on attach). */
  declare(topicName: string, groupNames: readonly string[], ordered = false): void {
    const topic = this.#topic(topicName);
    for (const name of groupNames) this.#group(topic, name).ordered ||= ordered;
  }

  /** Whether `topic` was declared or published to, or (with `group`) that group declared or subscribed. */
  has(topicName: string, groupName?: string): boolean {
    const topic = this.#topics.get(topicName);
    return topic !== undefined && (groupName === undefined || topic.groups.has(groupName));
  }

  /** Messages not yet acked in a group (for assertions in users' tests). */
  depth(topicName: string, groupName: string): number {
    return this.#topics.get(topicName)?.groups.get(groupName)?.messages.length ?? 0;
  }

  /** Every message ever published to `topic` (for assertions in users' tests). */
  published(topicName: string): Envelope[] {
    return (this.#topics.get(topicName)?.log ?? []).map((m) => m.envelope);
  }

  /** @internal for the ops of `memory://` (ops.ts): topic names. */
  topicNames(): string[] {
    return [...this.#topics.keys()];
  }

  /** @internal for ops.ts: the retained log with sequence numbers, oldest first; undefined when no such topic. */
  retained(topicName: string): ReadonlyArray<{ readonly seq: number; readonly envelope: Envelope }> | undefined {
    return this.#topics.get(topicName)?.log;
  }

  /** @internal for ops.ts: removes these messages from the log and from every group's queue (unless held); how many left the log. */
  removeRetained(topicName: string, seqs: ReadonlySet<number>): number {
    const topic = this.#topics.get(topicName);
    if (!topic) return 0;
    const before = topic.log.length;
    topic.log.splice(0, before, ...topic.log.filter((m) => !seqs.has(m.seq)));
    for (const group of topic.groups.values()) {
      group.messages.splice(0, group.messages.length, ...group.messages.filter((m) => m.holder !== undefined || !seqs.has(m.seq)));
    }
    return before - topic.log.length;
  }

  /** @internal for ops.ts: per group of `topic`, messages waiting, held by a consumer, and consumers. */
  groupStats(topicName: string): Array<{ group: string; ready: number; inFlight: number; consumers: number }> | undefined {
    const topic = this.#topics.get(topicName);
    if (!topic) return undefined;
    return [...topic.groups].map(([group, q]) => {
      const inFlight = q.messages.filter((m) => m.holder !== undefined).length;
      return { group, ready: q.messages.length - inFlight, inFlight, consumers: q.consumers.length };
    });
  }
}

/** What a consumer can do with its group. */
export interface GroupHandle {
  ack(seq: number): boolean;
  nack(seq: number, delayMs: number): boolean;
  /** Back to the queue without counting an attempt. */
  unclaim(seq: number): boolean;
  detach(): void;
  /** Dispatch again (after a resume). */
  wake(): void;
}

const brokers = new Map<string, MemoryBroker>();

/** The process-wide broker behind `memory://name` (`memory://` is the one named ""). */
export function memoryBroker(name = ''): MemoryBroker {
  let broker = brokers.get(name);
  if (!broker) {
    broker = new MemoryBroker();
    brokers.set(name, broker);
  }
  return broker;
}
