/**
 * Contiguous commit bookkeeping for one partition. Kafka commits a position ("everything before
 * this offset is done"), so an offset may only be committed once every message fetched before it
 * is settled: a message that finished early must not commit past an unfinished one. Offsets may
 * have gaps (transaction markers, compaction); only fetched offsets count.
 */
export class OffsetTracker {
  /** Fetched, not yet committable offsets, ascending; `#head` is the first live one. */
  #order: bigint[] = [];
  #head = 0;
  readonly #done = new Set<bigint>();
  #next: bigint | undefined;

  /**
   * Registers a fetched offset. Returns false for an offset at or below one already seen (a
   * re-fetch of something this tracker already holds), which the caller must skip.
   */
  add(offset: bigint): boolean {
    if (this.#next !== undefined && offset < this.#next) return false;
    this.#order.push(offset);
    this.#next = offset + 1n;
    return true;
  }

  /**
   * Marks an offset settled. Returns the new commit position (last contiguous settled offset + 1)
   * when it advanced, else undefined.
   */
  complete(offset: bigint): bigint | undefined {
    this.#done.add(offset);
    let advanced: bigint | undefined;
    while (this.#head < this.#order.length) {
      const first = this.#order[this.#head]!;
      if (!this.#done.has(first)) break;
      this.#done.delete(first);
      this.#head += 1;
      advanced = first + 1n;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
    return advanced;
  }

  /**
   * The commit position this partition would reach if `offset` were settled too (without settling
   * it): what a consume-transform-produce transaction may commit for that message.
   */
  positionIfCompleted(offset: bigint): bigint | undefined {
    let position: bigint | undefined;
    for (let i = this.#head; i < this.#order.length; i += 1) {
      const o = this.#order[i]!;
      if (o !== offset && !this.#done.has(o)) break;
      position = o + 1n;
    }
    return position;
  }

  /** Fetched offsets not yet committable. */
  get pending(): number {
    return this.#order.length - this.#head;
  }
}
