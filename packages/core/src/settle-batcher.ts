/**
 * Coalesces single-message settle calls (ack, nack with a delay, lease extension) made in one turn
 * of the event loop into batch calls, and settles each caller with its own message's outcome. The
 * one batcher behind every pull driver (see {@link DriverReceiver}).
 */
import type { SettleResults } from './driver/driver.ts';
import { MqError, toMqError } from './errors.ts';

interface Waiting<M> {
  readonly message: M;
  resolve(): void;
  reject(error: unknown): void;
}

/** Runs one batch call for `messages`, all queued under the same `key`. */
export type BatchRunner<K, M> = (key: K, messages: readonly M[]) => Promise<SettleResults>;

export class SettleBatcher<K, M> {
  readonly #run: BatchRunner<K, M>;
  readonly #max: number;
  #pending = new Map<K, Array<Waiting<M>>>();
  #scheduled = false;
  readonly #inFlight = new Set<Promise<void>>();

  /** `max`: most messages in one call; a full batch goes out at once. */
  constructor(run: BatchRunner<K, M>, max: number) {
    this.#run = run;
    this.#max = Math.max(1, max);
  }

  /** Queues `message` under `key` (e.g. the nack delay); resolves when its batch call settled it. */
  add(key: K, message: M): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let list = this.#pending.get(key);
      if (!list) {
        list = [];
        this.#pending.set(key, list);
      }
      list.push({ message, resolve, reject });
      if (list.length >= this.#max) {
        this.#pending.delete(key);
        this.#send(key, list);
      } else if (!this.#scheduled) {
        // setImmediate, not a microtask: every handler finishing in this I/O phase joins in.
        this.#scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Sends everything queued now. */
  flush(): void {
    this.#scheduled = false;
    const pending = this.#pending;
    this.#pending = new Map();
    for (const [key, list] of pending) this.#send(key, list);
  }

  /** Sends everything queued and waits until every call made so far has answered. */
  async drain(): Promise<void> {
    this.flush();
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  #send(key: K, list: Array<Waiting<M>>): void {
    let call: Promise<SettleResults>;
    try {
      call = this.#run(
        key,
        list.map((w) => w.message),
      );
    } catch (err) {
      call = Promise.reject(err);
    }
    const done = call.then(
      (results) => {
        if (!results) {
          for (const w of list) w.resolve();
          return;
        }
        if (results.length !== list.length) {
          const err = new MqError('INTERNAL', `settle returned ${results.length} results for ${list.length} messages`);
          for (const w of list) w.reject(err);
          return;
        }
        list.forEach((w, i) => {
          const error = results[i];
          if (error === undefined) w.resolve();
          else w.reject(error);
        });
      },
      (err: unknown) => {
        const error = toMqError(err);
        for (const w of list) w.reject(error);
      },
    );
    this.#inFlight.add(done);
    void done.finally(() => this.#inFlight.delete(done));
  }
}
