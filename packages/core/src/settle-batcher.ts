/**
 * Coalesces single-message settle calls (ack, nack with a delay, lease extension) made in one turn
 * of the event loop into batch calls, and settles each caller with its own message's outcome. The
 * one batcher behind every pull driver (see {@link DriverReceiver}).
 */
import type { SettleResults } from './driver/driver.ts';
import { MqError, toMqError } from './errors.ts';

/** Runs one batch call for `items`, all queued under the same `key`. */
export type BatchRunner<K, M> = (key: K, items: readonly M[]) => Promise<SettleResults>;

/**
 * Called with each item's outcome (`undefined`: done) and the key it was queued under when its
 * batch call answered, before the item's promise settles: the caller's bookkeeping without a
 * promise reaction per message.
 */
export type AfterSettle<K, M> = (item: M, error: MqError | undefined, key: K) => void;

/** One batch being gathered: parallel arrays, not an object per message (this runs per message). */
class Batch<K, M> {
  readonly items: M[] = [];
  readonly afters: Array<AfterSettle<K, M> | undefined> = [];
  readonly resolves: Array<() => void> = [];
  readonly rejects: Array<(error: unknown) => void> = [];
}

export class SettleBatcher<K, M> {
  readonly #run: BatchRunner<K, M>;
  readonly #max: number;
  #pending = new Map<K, Batch<K, M>>();
  #scheduled = false;
  readonly #inFlight = new Set<Promise<void>>();

  /** `max`: most messages in one call; a full batch goes out at once. */
  constructor(run: BatchRunner<K, M>, max: number) {
    this.#run = run;
    this.#max = Math.max(1, max);
  }

  /**
   * Queues `item` under `key` (e.g. the nack delay); resolves when its batch call settled it, after
   * `after` ran with the outcome.
   */
  add(key: K, item: M, after?: AfterSettle<K, M>): Promise<void> {
    let batch = this.#pending.get(key);
    if (!batch) {
      batch = new Batch<K, M>();
      this.#pending.set(key, batch);
    }
    batch.items.push(item);
    batch.afters.push(after);
    const { resolves, rejects } = batch;
    const promise = new Promise<void>((resolve, reject) => {
      resolves.push(resolve);
      rejects.push(reject);
    });
    if (batch.items.length >= this.#max) {
      this.#pending.delete(key);
      this.#send(key, batch);
    } else if (!this.#scheduled) {
      // setImmediate, not a microtask: every handler finishing in this I/O phase joins in.
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
    return promise;
  }

  /** Sends everything queued now. */
  flush(): void {
    this.#scheduled = false;
    const pending = this.#pending;
    this.#pending = new Map();
    for (const [key, batch] of pending) this.#send(key, batch);
  }

  /** Sends everything queued and waits until every call made so far has answered. */
  async drain(): Promise<void> {
    this.flush();
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  #send(key: K, batch: Batch<K, M>): void {
    let call: Promise<SettleResults>;
    try {
      call = this.#run(key, batch.items);
    } catch (err) {
      call = Promise.reject(err);
    }
    const done = call.then(
      (results) => {
        if (results && results.length !== batch.items.length) {
          SettleBatcher.#settle(key, batch, () => new MqError('INTERNAL', `settle returned ${results.length} results for ${batch.items.length} messages`));
        } else {
          SettleBatcher.#settle(key, batch, results ? (i) => results[i] : () => undefined);
        }
      },
      (err: unknown) => {
        const error = toMqError(err);
        SettleBatcher.#settle(key, batch, () => error);
      },
    );
    this.#inFlight.add(done);
    void done.finally(() => this.#inFlight.delete(done));
  }

  static #settle<K, M>(key: K, batch: Batch<K, M>, errorOf: (i: number) => MqError | undefined): void {
    const { items, afters, resolves, rejects } = batch;
    for (let i = 0; i < items.length; i++) {
      const error = errorOf(i);
      let failure: unknown = error;
      try {
        afters[i]?.(items[i]!, error, key);
      } catch (err) {
        // A bookkeeping bug must reach its caller, not leave the rest of the batch waiting.
        failure ??= err;
      }
      if (failure === undefined) resolves[i]!();
      else rejects[i]!(failure);
    }
    // Drop the references: a batch that lived through a scavenge is in the old generation until
    // the next full GC, and everything it still points to would be kept and promoted with it.
    items.length = 0;
    afters.length = 0;
    resolves.length = 0;
    rejects.length = 0;
  }
}
