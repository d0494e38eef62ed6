/**
 * Per-message bookkeeping without a long-lived Set or Map. A Set or Map that gains and loses an
 * entry per message reallocates its hash table again and again, and V8 links each replaced table
 * to its successor (for live iterators) without clearing it: once one replaced table has reached
 * the old generation, it keeps every entry added since alive through the scavenges, and they are
 * promoted. Measured on the consume path (issue #17): 40 % of the bytes allocated per message
 * survived scavenges and the young generation grew to 64 MB, most of the backlog-drain RSS
 * growth; with Slots and KeyIndex, 1 %.
 */

/** A set of items that carry their own slot index; slots are reused through a free list. */
export class Slots<T extends { slot: number }> {
  readonly #slots: Array<T | undefined> = [];
  readonly #free: number[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(item: T): void {
    const slot = this.#free.pop() ?? this.#slots.length;
    this.#slots[slot] = item;
    item.slot = slot;
    this.#size += 1;
  }

  /** Removes `item` if it is here (else nothing). */
  delete(item: T): void {
    if (item.slot < 0 || this.#slots[item.slot] !== item) return;
    this.#slots[item.slot] = undefined;
    this.#free.push(item.slot);
    item.slot = -1;
    this.#size -= 1;
  }

  /** The items now, as a new array (callers may delete while going through it). */
  list(): T[] {
    const out: T[] = [];
    for (const item of this.#slots) if (item !== undefined) out.push(item);
    return out;
  }
}

/** How many insertions a {@link KeyIndex} takes before it moves its entries to a fresh Map. */
const RENEW_EVERY = 1024;

/**
 * Items by string key: a Map (a dictionary object would have to internalize every new key, a
 * string-table insertion per message) that moves its live entries to a fresh Map every
 * {@link RENEW_EVERY} insertions, so that a chain of replaced tables (see above) holds at most
 * that many entries' worth of garbage, at the cost of copying the live entries (a subscription's
 * in-flight messages) once per that many.
 */
export class KeyIndex<T> {
  #items = new Map<string, T>();
  #inserts = 0;

  get(key: string): T | undefined {
    return this.#items.get(key);
  }

  has(key: string): boolean {
    return this.#items.has(key);
  }

  set(key: string, item: T): void {
    this.#items.set(key, item);
    if (++this.#inserts >= RENEW_EVERY) {
      this.#inserts = 0;
      this.#items = new Map(this.#items);
    }
  }

  delete(key: string): void {
    this.#items.delete(key);
  }

  values(): T[] {
    return [...this.#items.values()];
  }
}
