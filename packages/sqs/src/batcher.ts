/**
 * Coalesces single-message calls (delete, change visibility) made in the same tick into batch
 * calls of at most 10 entries per queue, and settles each caller with its own entry's outcome.
 */
import type { MqError } from '@mqkit/core/driver';

/** Most entries SQS takes in one batch call. */
export const SQS_BATCH_LIMIT = 10;

interface Waiting<E> {
  readonly entry: E;
  resolve(): void;
  reject(error: MqError): void;
}

/**
 * Runs one batch call for `entries` of `queueUrl`; returns, per entry in order, `undefined` on
 * success or the entry's error. Throwing fails every entry with the (classified) error.
 */
export type BatchRunner<E> = (queueUrl: string, entries: readonly E[]) => Promise<ReadonlyArray<MqError | undefined>>;

export class Batcher<E> {
  readonly #run: BatchRunner<E>;
  readonly #classify: (err: unknown) => MqError;
  #pending = new Map<string, Array<Waiting<E>>>();
  #scheduled = false;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #lingerMs: number;

  /**
   * @param lingerMs how long a partial batch waits for more entries (0: until the end of the
   *   current tick). A few ms fill batches from handlers that finish at slightly different times.
   */
  constructor(run: BatchRunner<E>, classify: (err: unknown) => MqError, lingerMs = 0) {
    this.#run = run;
    this.#classify = classify;
    this.#lingerMs = lingerMs;
  }

  /** Queues one entry; resolves when its batch call succeeded for it. */
  add(queueUrl: string, entry: E): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let list = this.#pending.get(queueUrl);
      if (!list) {
        list = [];
        this.#pending.set(queueUrl, list);
      }
      list.push({ entry, resolve, reject });
      if (list.length >= SQS_BATCH_LIMIT) {
        this.#pending.delete(queueUrl);
        this.#track(this.#send(queueUrl, list));
      } else if (!this.#scheduled) {
        this.#scheduled = true;
        if (this.#lingerMs > 0) setTimeout(() => this.#flush(), this.#lingerMs);
        else setImmediate(() => this.#flush());
      }
    });
  }

  /** Waits until every entry added so far was settled. */
  async drain(): Promise<void> {
    while (this.#scheduled || this.#pending.size > 0 || this.#inFlight.size > 0) {
      if (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
      else await new Promise((resolve) => setImmediate(resolve));
    }
  }

  #track(done: Promise<void>): void {
    this.#inFlight.add(done);
    void done.finally(() => this.#inFlight.delete(done));
  }

  #flush(): void {
    this.#scheduled = false;
    const pending = this.#pending;
    this.#pending = new Map();
    for (const [queueUrl, list] of pending) {
      for (let i = 0; i < list.length; i += SQS_BATCH_LIMIT) this.#track(this.#send(queueUrl, list.slice(i, i + SQS_BATCH_LIMIT)));
    }
  }

  async #send(queueUrl: string, list: Array<Waiting<E>>): Promise<void> {
    let results: ReadonlyArray<MqError | undefined>;
    try {
      results = await this.#run(queueUrl, list.map((w) => w.entry));
    } catch (err) {
      const error = this.#classify(err);
      for (const w of list) w.reject(error);
      return;
    }
    list.forEach((w, i) => {
      const error = results[i];
      if (error) w.reject(error);
      else w.resolve();
    });
  }
}
