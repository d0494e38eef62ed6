interface Entry {
  givenBack: number;
  last: number;
  acked: boolean;
}

/**
 * What this process knows about a message's attempts beyond the broker's `deliveryAttempt`, per
 * consumer group and broker message id:
 * - deliveries given back without reaching a handler (held behind a nacked message of their
 *   ordered lane, or still held back at close): the broker counts them, but they are not attempts,
 *   or a successor of a message retried maxAttempts times would arrive past maxAttempts and be
 *   dead-lettered unhandled;
 * - the last attempt handed to core: the proxy was seen handing a nacked FIFO message over again
 *   with the same `deliveryAttempt`, and attempts must strictly increase (else a handler runs
 *   more than maxAttempts times).
 * - that it was acked: a FIFO queue is popped in batches, and when an earlier message of the
 *   batch is nacked or given back, the broker pops the queue again from that message and
 *   redelivers the later ones although they were acked (it forgets a batch's acks on a re-pop;
 *   apache/rocketmq ConsumerOrderInfoManager). Such a copy is acked again without reaching core:
 *   its handler already ran to an ack (issue #16, model seed 1496463186/7: a message acked once
 *   came back four times, each with one more attempt, towards the DLQ).
 * Kept in memory, bounded (oldest first), and shared by every client of the process
 * ({@link processAttemptLedger}): a delivery given back by one client's closing subscription is
 * redelivered to whichever client of the group receives next, often another one in the same
 * process (a restart on a new client). A per-client ledger let that client see the broker's raw
 * count (attempt 2 for a first handler run), after which the first client, correcting by its own
 * give-back, handed attempt 2 over again: attempts went backwards (issue #16, model seed
 * 1197249615). Another process still sees the broker's count, which only errs high (an attempt
 * used up early), never low.
 */
/** What {@link AttemptLedger} keeps of an acked key (copied before any change). */
const ACKED: Entry = Object.freeze({ givenBack: 0, last: 0, acked: true });

export class AttemptLedger {
  /**
   * Two generations instead of one map evicted oldest-first: deleting a Map's first key leaves a
   * hole that `keys().next()` skips on every later eviction until V8 compacts the table, so one
   * eviction per new message cost O(bound) (about 8 µs at 10,000, a third of Kafka's consume
   * rate). When `young` holds half the bound it becomes `old` and the previous `old` is dropped:
   * at least the `max / 2` most recently used keys are kept, never more than `max`.
   */
  #young = new Map<string, Entry>();
  #old = new Map<string, Entry>();
  readonly #half: number;

  constructor(max = 10_000) {
    this.#half = Math.max(1, Math.floor(max / 2));
  }

  get size(): number {
    return this.#young.size + this.#old.size;
  }

  #entry(key: string): Entry {
    let entry = this.#young.get(key);
    if (entry === undefined) {
      entry = this.#old.get(key);
      if (entry !== undefined) this.#old.delete(key);
      entry = entry === ACKED || entry === undefined ? { givenBack: 0, last: 0, acked: entry === ACKED } : entry;
      this.#put(key, entry);
    } else if (entry === ACKED) {
      entry = { givenBack: 0, last: 0, acked: true };
      this.#young.set(key, entry);
    }
    return entry;
  }

  #put(key: string, entry: Entry): void {
    this.#young.set(key, entry);
    if (this.#young.size >= this.#half) {
      this.#old = this.#young;
      this.#young = new Map();
    }
  }

  /** A delivery of `key` went back to the broker without reaching a handler. */
  givenBack(key: string): void {
    this.#entry(key).givenBack += 1;
  }

  #lookup(key: string): Entry | undefined {
    return this.#young.get(key) ?? this.#old.get(key);
  }

  /**
   * The attempt of a delivery the broker counts as `brokerAttempt`, now handed to core. Reads
   * only: a message this process never gave back nor saw come back has no entry (two lookups,
   * no allocation). {@link AttemptLedger.handedBack} records the attempt a delivery ended with
   * when it goes back, which is what a repeated count is checked against.
   */
  attempt(key: string, brokerAttempt: number): number {
    const entry = this.#lookup(key);
    if (entry === undefined) return Math.max(1, brokerAttempt);
    return Math.max(1, brokerAttempt - entry.givenBack, entry.last + 1);
  }

  /**
   * A delivery handed over as `attempt` went back without an ack (a nack, a failed ack, a close):
   * the next one must be later, whatever count the broker hands it with (the proxy was seen
   * handing a nacked FIFO message over again with the same deliveryAttempt).
   */
  handedBack(key: string, attempt: number): void {
    const entry = this.#entry(key);
    if (attempt > entry.last) entry.last = attempt;
  }

  /**
   * The message is acked: its attempts no longer matter, only that it was acked. Recorded only
   * for receivers whose broker may hand an acked message over again
   * (`DriverReceiver.redeliversAcked`): one write per message, and a ledger full of acked keys
   * makes every lookup slower and every key live long enough to be promoted.
   */
  settled(key: string): void {
    // One shared entry for every acked key: the per-key one, made at its hand-over, dies young
    // (most messages are acked within milliseconds) instead of living on for thousands more.
    if (this.#young.has(key)) this.#young.set(key, ACKED);
    else {
      this.#old.delete(key);
      this.#put(key, ACKED);
    }
  }

  /**
   * The message is acked and its copies need not be recognised: its entry goes (a ledger that
   * empties again costs the hand-over nothing, see `PullSubscription`).
   */
  forget(key: string): void {
    if (!this.#young.delete(key)) this.#old.delete(key);
  }

  /** Whether this process acked `key` (a copy arriving now is the broker's re-pop, not a retry). */
  acked(key: string): boolean {
    return this.#lookup(key)?.acked === true;
  }
}

/** The one ledger of this process (see {@link AttemptLedger} for why it is not per client). */
export const processAttemptLedger = new AttemptLedger();
