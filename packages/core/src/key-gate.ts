/**
 * Keeps the messages of one (topic, key) in publish order on their way to the broker: a keyed
 * message is sent only when no earlier message of its key is inside a driver call or waiting to
 * be retried. Messages are numbered in publish order (`seq`).
 */
export class KeyGate {
  /** Messages of a key inside a driver `send` call. */
  readonly #inFlight = new Map<string, number>();
  /** Seqs of a key's messages waiting to be retried. */
  readonly #retrying = new Map<string, Set<number>>();

  static laneOf(topic: string, key: string | undefined): string | undefined {
    return key === undefined ? undefined : `${topic}\u0000${key}`;
  }

  /** May message `seq` of `lane` be sent now? */
  admits(lane: string, seq: number): boolean {
    if ((this.#inFlight.get(lane) ?? 0) > 0) return false;
    const waiting = this.#retrying.get(lane);
    return waiting === undefined || waiting.size === 0 || seq === Math.min(...waiting);
  }

  /** The message is handed to the driver. */
  sent(lane: string, seq: number): void {
    this.#inFlight.set(lane, (this.#inFlight.get(lane) ?? 0) + 1);
    const waiting = this.#retrying.get(lane);
    if (waiting?.delete(seq) && waiting.size === 0) this.#retrying.delete(lane);
  }

  /** The driver answered for the message; `retry` when it will be sent again later. */
  settled(lane: string, seq: number, retry: boolean): void {
    const n = (this.#inFlight.get(lane) ?? 1) - 1;
    if (n > 0) this.#inFlight.set(lane, n);
    else this.#inFlight.delete(lane);
    if (retry) {
      let waiting = this.#retrying.get(lane);
      if (!waiting) {
        waiting = new Set();
        this.#retrying.set(lane, waiting);
      }
      waiting.add(seq);
    }
  }
}
