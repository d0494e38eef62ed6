/**
 * Contiguous commit bookkeeping for one partition. Kafka commits a position ("everything before
 * this offset is done"), so an offset may only be committed once every message fetched before it
 * is settled: a message that finished early must not commit past an unfinished one. Offsets may
 * have gaps (transaction markers, compaction); only fetched offsets count.
 *
 * Entries are the caller's own per-record objects (their `done` flag is the settled state), and
 * offsets stay the decimal strings the client hands out: no BigInt parse, no Set of bigints and no
 * extra allocation per message. Arithmetic (`+ 1`) happens once per commit, in {@link nextOffset}.
 */

/** What the tracker needs of a fetched record. */
export interface TrackedOffset {
  /** Decimal offset as the client reports it (no sign, no leading zeros). */
  readonly offset: string;
  /** Settled: it no longer holds the commit position back. */
  readonly done: boolean;
}

/** Orders two decimal offset strings (no leading zeros): negative, 0 or positive like a comparator. */
export function compareOffsets(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The commit position after `offset`: the next offset to read. */
export function nextOffset(offset: string): string {
  return (BigInt(offset) + 1n).toString();
}

export class OffsetTracker<E extends TrackedOffset = TrackedOffset> {
  /** Fetched entries in offset order; `#head` is the first one not yet committable. */
  #order: E[] = [];
  #head = 0;
  /** Offset of the last entry added (a refetch at or below it is refused). */
  #last: string | undefined;

  /**
   * Registers a fetched entry. Returns false for an offset at or below one already seen (a
   * re-fetch of something this tracker already holds), which the caller must skip.
   */
  add(entry: E): boolean {
    if (this.#last !== undefined && compareOffsets(entry.offset, this.#last) <= 0) return false;
    this.#order.push(entry);
    this.#last = entry.offset;
    return true;
  }

  /**
   * Moves past the settled prefix after an entry was marked done. Returns the last offset of the
   * contiguous settled prefix when the position advanced (commit {@link nextOffset} of it), else
   * undefined.
   */
  advance(): string | undefined {
    const order = this.#order;
    let head = this.#head;
    if (head >= order.length || !order[head]!.done) return undefined;
    do head += 1;
    while (head < order.length && order[head]!.done);
    const last = order[head - 1]!.offset;
    // Drop the settled prefix once it dominates (amortised O(1) per message, bounded memory).
    if (head > 1024 && head * 2 > order.length) {
      this.#order = order.slice(head);
      head = 0;
    }
    this.#head = head;
    return last;
  }

  /**
   * The commit position this partition would reach if the entry at `offset` were settled too
   * (without settling it): what a consume-transform-produce transaction may commit for it.
   */
  positionIfCompleted(offset: string): string | undefined {
    let last: string | undefined;
    for (let i = this.#head; i < this.#order.length; i += 1) {
      const e = this.#order[i]!;
      if (e.offset !== offset && !e.done) break;
      last = e.offset;
    }
    return last === undefined ? undefined : nextOffset(last);
  }

  /** Visits the entries not yet committable, in order, while `visit` returns true. */
  scan(visit: (entry: E) => boolean): void {
    const order = this.#order;
    for (let i = this.#head; i < order.length; i += 1) if (!visit(order[i]!)) return;
  }

  /** Entries not yet committable (settled ones behind an unsettled one included), in order. */
  *unsettled(): IterableIterator<E> {
    for (let i = this.#head; i < this.#order.length; i += 1) yield this.#order[i]!;
  }

  /** Fetched entries not yet committable. */
  get pending(): number {
    return this.#order.length - this.#head;
  }
}
