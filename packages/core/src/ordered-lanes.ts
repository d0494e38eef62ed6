import { KeyIndex } from './slots.ts';

/**
 * Per-key order for ordered subscriptions: of the messages received for one lane (FIFO message
 * group), only the oldest is handed to core; the next follows when it is acked. After a nack the
 * lane's later messages must not overtake the retried one, so they are given back to the broker
 * too, which redelivers the group in order.
 */
export class OrderedLanes<T> {
  /** Not a Map: a lane comes and goes with nearly every message (see slots.ts). */
  readonly #lanes = new KeyIndex<T[]>();

  /** Adds a received item; true when it is the lane's head and may be delivered now. */
  add(lane: string, item: T): boolean {
    const queue = this.#lanes.get(lane);
    if (queue) {
      queue.push(item);
      return false;
    }
    this.#lanes.set(lane, [item]);
    return true;
  }

  /** `item` was acked: the lane's next item to deliver, if any. */
  acked(lane: string, item: T): T | undefined {
    const rest = this.#remove(lane, item);
    if (rest.length === 0) return undefined;
    this.#lanes.set(lane, rest);
    return rest[0];
  }

  /** `item` was nacked: the lane is emptied and its later items returned, to be given back. */
  nacked(lane: string, item: T): T[] {
    const rest = this.#remove(lane, item);
    return rest;
  }

  /** Items waiting in all lanes (for tests and diagnostics). */
  get size(): number {
    let n = 0;
    for (const queue of this.#lanes.values()) n += queue.length;
    return n;
  }

  #remove(lane: string, item: T): T[] {
    const rest = (this.#lanes.get(lane) ?? []).filter((i) => i !== item);
    this.#lanes.delete(lane);
    return rest;
  }
}
