/**
 * Acks of one subscription, coalesced: the acks asked for in one turn of the event loop go out as
 * one AckMessage request per (topic, proxy endpoint), one entry per message, instead of one gRPC
 * call per message. Each ack still resolves or rejects with its own entry's status, and only
 * acks that were asked for (after their handler) are ever sent.
 */

/** One message to ack: its id and the receipt handle to ack it with. */
export interface AckEntry {
  readonly messageId: string;
  readonly receiptHandle: string;
}

/** The outcome of one entry: `undefined` when acked, else why not. */
export type AckEntryResult = Error | undefined;

/**
 * Sends one AckMessage request for `entries` (all of one topic and endpoint, described by
 * `target`) and returns one result per entry, in order; rejects when the whole request failed.
 */
export type AckBatchSender<T> = (target: T, entries: readonly AckEntry[]) => Promise<AckEntryResult[]>;

interface Waiting {
  readonly entry: AckEntry;
  resolve(): void;
  reject(err: unknown): void;
}

interface Queue<T> {
  readonly target: T;
  waiting: Waiting[];
}

export class AckBatcher<T> {
  readonly #send: AckBatchSender<T>;
  readonly #maxEntries: number;
  readonly #queues = new Map<string, Queue<T>>();
  #scheduled = false;

  /** `maxEntries`: most entries in one request; a full request goes out at once. */
  constructor(send: AckBatchSender<T>, maxEntries: number) {
    this.#send = send;
    this.#maxEntries = Math.max(1, maxEntries);
  }

  /** Acks `entry` with the next request to `target` (`key` identifies the target). */
  ack(key: string, target: T, entry: AckEntry): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let queue = this.#queues.get(key);
      if (!queue) {
        queue = { target, waiting: [] };
        this.#queues.set(key, queue);
      }
      queue.waiting.push({ entry, resolve, reject });
      if (queue.waiting.length >= this.#maxEntries) {
        this.#queues.delete(key);
        this.#dispatch(queue);
      } else if (!this.#scheduled) {
        // setImmediate, not a microtask: the handlers finishing in this I/O phase all join in.
        this.#scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Sends everything queued now. */
  flush(): void {
    this.#scheduled = false;
    const queues = [...this.#queues.values()];
    this.#queues.clear();
    for (const queue of queues) this.#dispatch(queue);
  }

  #dispatch(queue: Queue<T>): void {
    const { waiting } = queue;
    let results: Promise<AckEntryResult[]>;
    try {
      results = this.#send(
        queue.target,
        waiting.map((w) => w.entry),
      );
    } catch (err) {
      results = Promise.reject(err);
    }
    results.then(
      (outcomes) => {
        if (outcomes.length !== waiting.length) {
          const err = new Error(`ack returned ${outcomes.length} results for ${waiting.length} entries`);
          for (const w of waiting) w.reject(err);
          return;
        }
        waiting.forEach((w, i) => {
          const failure = outcomes[i];
          if (failure === undefined) w.resolve();
          else w.reject(failure);
        });
      },
      (err: unknown) => {
        for (const w of waiting) w.reject(err);
      },
    );
  }
}
