/**
 * RocketMQ 5 topics are typed and a message's inferred type must match its topic's. Rather than
 * making users declare every topic twice, the adapter reads the type from the topic's route (the
 * proxy lists the message types each queue accepts) and caches it.
 */
import type { Producer } from 'rocketmq-client-nodejs';

/** A RocketMQ 5 topic's message type. */
export type TopicType = 'NORMAL' | 'FIFO' | 'DELAY' | 'TRANSACTION';

/** Numeric `MessageType` values of the gRPC protocol (apache.rocketmq.v2.MessageType). */
const WIRE_TYPES: Readonly<Record<number, TopicType>> = { 1: 'NORMAL', 2: 'FIFO', 3: 'DELAY', 4: 'TRANSACTION' };

/** The topic type from the accept-types of a route's queues (first specific one wins). */
export function topicTypeOf(acceptTypes: readonly number[]): TopicType {
  for (const wire of acceptTypes) {
    const type = WIRE_TYPES[wire];
    if (type && type !== 'NORMAL') return type;
  }
  return 'NORMAL';
}

interface RouteAccess {
  getRouteData(topic: string): Promise<{ messageQueues: Array<{ acceptMessageTypesList: number[] }> }>;
  readonly topics: Set<string>;
  readonly topicRouteCache: Map<string, unknown>;
}

/** Caches topic types, resolving each through the producer's own route lookup once. */
export class TopicTypes {
  readonly #producer: Producer;
  readonly #known = new Map<string, TopicType>();
  readonly #pending = new Map<string, Promise<TopicType>>();
  readonly #onResolved: ((topic: string) => void) | undefined;

  /** `onResolved` runs after a topic's first successful lookup. */
  constructor(producer: Producer, onResolved?: (topic: string) => void) {
    this.#producer = producer;
    this.#onResolved = onResolved;
  }

  /** Type of `topic`; rejects (with the client's NotFoundException) when it does not exist. */
  get(topic: string): Promise<TopicType> {
    const known = this.#known.get(topic);
    if (known) return Promise.resolve(known);
    let pending = this.#pending.get(topic);
    if (!pending) {
      pending = this.#resolve(topic).finally(() => this.#pending.delete(topic));
      this.#pending.set(topic, pending);
    }
    return pending;
  }

  /** The cached type of `topic`, if known (no promise on the hot path). */
  known(topic: string): TopicType | undefined {
    return this.#known.get(topic);
  }

  /** Forget a topic's type (e.g. after the broker refused a message as of the wrong type). */
  forget(topic: string): void {
    this.#known.delete(topic);
  }

  async #resolve(topic: string): Promise<TopicType> {
    // getRouteData is protected in the client's typings but is the only route lookup it offers.
    const access = this.#producer as unknown as RouteAccess;
    try {
      const route = await access.getRouteData(topic);
      const type = topicTypeOf(route.messageQueues.flatMap((q) => q.acceptMessageTypesList));
      this.#known.set(topic, type);
      this.#onResolved?.(topic);
      return type;
    } catch (err) {
      // The client keeps refreshing every topic it ever looked up and stops at the first failure,
      // so a missing topic would starve the others' route refreshes: drop it.
      if (!access.topicRouteCache.has(topic)) access.topics.delete(topic);
      throw err;
    }
  }
}
