/**
 * The buffer between a push-native broker client (RabbitMQ's basic.consume, an in-process broker)
 * and {@link DriverReceiver.receive}: the client pushes, `take` hands over up to `max` and waits
 * while there is nothing. It never limits what is pushed: the broker's own window (prefetch, the
 * consumer's in-flight bound) must, so that this stays as small as core's budget.
 */
export class PushBuffer<T> {
  #items: T[] = [];
  #failure: unknown = undefined;
  #waiter: (() => void) | undefined;

  get size(): number {
    return this.#items.length;
  }

  push(item: T): void {
    this.#items.push(item);
    this.#waiter?.();
  }

  /** The next {@link take} rejects with `error` once the items pushed before it are taken. */
  fail(error: unknown): void {
    this.#failure = error;
    this.#waiter?.();
  }

  /** Wakes a waiting {@link take} (it resolves with what there is, maybe nothing). */
  wake(): void {
    this.#waiter?.();
  }

  /** Up to `max` items; waits for one, a failure, a {@link wake} or the signal's abort. */
  async take(max: number, signal: AbortSignal): Promise<T[]> {
    if (this.#items.length === 0 && this.#failure === undefined && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.#waiter = undefined;
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.#waiter = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
    if (this.#items.length === 0 && this.#failure !== undefined) {
      // What failed the source is passed on as it was thrown (typed unknown: not narrowed to {}).
      const failure: unknown = this.#failure;
      this.#failure = undefined;
      throw failure;
    }
    return this.#splice(max);
  }

  /** Takes out, in order, the items `match` selects (e.g. the later messages of a key held back). */
  extract(match: (item: T) => boolean): T[] {
    const out = this.#items.filter(match);
    if (out.length > 0) this.#items = this.#items.filter((item) => !match(item));
    return out;
  }

  /** Everything not taken (to give back on close). */
  drain(): T[] {
    return this.#splice(this.#items.length);
  }

  #splice(max: number): T[] {
    const items = this.#items;
    if (items.length <= max) {
      this.#items = [];
      return items;
    }
    this.#items = items.slice(max);
    return items.slice(0, max);
  }
}
