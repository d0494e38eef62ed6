/**
 * Keeps the messages of one (topic, key) in publish order on their way to the broker: a keyed
 * message is sent only when no earlier message of its key is waiting to be retried, nor (unless
 * the driver's calls are ordered) inside an earlier driver call. Messages are numbered in publish
 * order (`seq`).
 *
 * A message whose caller was answered early (its publish deadline passed) keeps its place here
 * until its driver call actually settles: the broker may still write it, so a later message of its
 * key must not be handed over before that (see {@link KeyGate.abandon} for one that was waiting to
 * be retried, which is not on its way and so gives its place up at once).
 */
export class KeyGate {
  /** Messages of a key inside a driver `send` call. */
  readonly #inFlight = new Map<string, number>();
  /** Seqs of a key's messages waiting to be retried, ascending. */
  readonly #retrying = new Map<string, number[]>();

  static laneOf(topic: string, key: string | undefined): string | undefined {
    return key === undefined ? undefined : `${topic}\u0000${key}`;
  }

  /**
   * May message `seq` of `lane` be sent now? Never while an earlier message of the lane waits to
   * be retried. `inFlightOk`: messages of the lane already inside a driver call do not block (the
   * driver keeps its calls in order, or they are in the very batch this one joins).
   */
  admits(lane: string, seq: number, inFlightOk = false): boolean {
    if (!inFlightOk && (this.#inFlight.get(lane) ?? 0) > 0) return false;
    const waiting = this.#retrying.get(lane);
    return waiting === undefined || seq <= waiting[0]!;
  }

  /** The message is handed to the driver. */
  sent(lane: string, seq: number): void {
    this.#inFlight.set(lane, (this.#inFlight.get(lane) ?? 0) + 1);
    const waiting = this.#retrying.get(lane);
    if (waiting === undefined) return;
    const at = waiting[0] === seq ? 0 : lowerBound(waiting, seq);
    if (waiting[at] === seq) waiting.splice(at, 1);
    if (waiting.length === 0) this.#retrying.delete(lane);
  }

  /** The driver answered for the message; `retry` when it will be sent again later. */
  settled(lane: string, seq: number, retry: boolean): void {
    const n = (this.#inFlight.get(lane) ?? 1) - 1;
    if (n > 0) this.#inFlight.set(lane, n);
    else this.#inFlight.delete(lane);
    if (!retry) return;
    const waiting = this.#retrying.get(lane);
    if (waiting === undefined) this.#retrying.set(lane, [seq]);
    else if (waiting[waiting.length - 1]! < seq) waiting.push(seq);
    else waiting.splice(lowerBound(waiting, seq), 0, seq);
  }

  /**
   * A message waiting to be retried is given up (its deadline passed): it will not be sent again,
   * so it no longer holds back the later messages of its key.
   */
  abandon(lane: string, seq: number): void {
    const waiting = this.#retrying.get(lane);
    if (waiting === undefined) return;
    const at = lowerBound(waiting, seq);
    if (waiting[at] !== seq) return;
    waiting.splice(at, 1);
    if (waiting.length === 0) this.#retrying.delete(lane);
  }
}

/** First index in ascending `xs` whose value is ≥ `x`. */
function lowerBound(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
