/**
 * Delivery attempts that survive a crash, written into the consumer group's own offset-commit
 * `metadata` string (OffsetCommit carries one per partition, next to the committed position).
 *
 * Kafka keeps no delivery count. The adapter's commits (same position: nothing unfinished is
 * committed) describe the window `[position, end]` of offsets it has taken, as runs of one value:
 *
 * - `_`: acked, only held back by an unfinished earlier offset (not redelivered after a crash);
 * - `n ≥ 0`: `n` deliveries made (or about to be made) of that offset.
 *
 * Two kinds of log:
 *
 * - *running* (written while consuming): first deliveries are handed to core without waiting for a
 *   commit, but never more than `lag` offsets past the `end` of the last commit that landed. So
 *   after a crash every unacked record in `[position, end + lag]` may have been handed over
 *   unrecorded: the next owner treats each as a suspect with attempt `max(n, 1) + 1` (a record never
 *   recorded counts as taken once). Redeliveries (attempt > 1) and suspects are recorded before
 *   their hand-over, so their `n` is exact.
 * - *clean* (written by a graceful close): exact; a record with `n > 0` comes back with attempt
 *   `n + 1` (a suspect), one with `n = 0` or past `end` with attempt 1.
 *
 * Format `mq2;<count>;<lag | c>;<offset>:<value>,…` (`count` = end − position + 1, `c` = clean,
 * offsets relative to the position, base 36): a run starts at its offset and lasts until the next
 * one or `end`. The older `mq1;<end − position>;<runs>` (recorded before every hand-over) reads as
 * clean. Only group members can commit offsets, so a foreign producer cannot forge it; anything
 * unparseable reads as "nothing recorded".
 */

const VERSION = 'mq2';
const LEGACY = 'mq1';

/** Kafka's `offset.metadata.max.bytes` defaults to 4096; stay well below it. */
export const MAX_METADATA_CHARS = 2_000;

/** What the log needs of a taken record. */
export interface LoggedOffset {
  readonly offset: string;
  readonly done: boolean;
  /** The attempt of its current (or next) delivery, 1-based. */
  readonly attempt: number;
  /** Whether that attempt has been handed to core. */
  readonly handed: boolean;
  /**
   * Whether that attempt counts while running: handed, or recorded before its hand-over (a
   * suspect, a redelivery, a record waiting for the lag bound). Others count only what they went
   * through.
   */
  readonly taken: boolean;
}

const DONE = -1;

/**
 * What a record counts for: while running, every taken record counts its current attempt (it may
 * be handed over before the next commit); on close (`exact`), only deliveries actually made.
 */
function valueOf(entry: LoggedOffset, exact: boolean): number {
  if (entry.done) return DONE;
  return (exact ? entry.handed : entry.taken) ? entry.attempt : entry.attempt - 1;
}

function runText(at: number, value: number): string {
  return `${at.toString(36)}:${value === DONE ? '_' : value.toString(36)}`;
}

/** How to encode: a running log with its lag bound, or the exact log of a graceful close. */
export type LogMode = { readonly lag: number } | 'exact';

/**
 * Encodes the window `[position, end]`. `entries` are the partition's fetched records from the
 * first unsettled one on, in offset order (records past `end` are ignored). Offsets of the window
 * past the last entry (not fetched yet) take their value from `carry`, the previous owner's log,
 * so a new owner's commits keep its suspects. When the runs would exceed
 * {@link MAX_METADATA_CHARS}, the rest of the window becomes one run of `tailValue` (at least every
 * remaining attempt): a crash may then count too many attempts there, never too few.
 */
export function encodeAttemptLog(
  position: number,
  end: number,
  entries: Iterable<LoggedOffset>,
  tailValue: number,
  mode: LogMode = { lag: 0 },
  carry?: AttemptLog,
): string {
  const exact = mode === 'exact';
  const count = Math.max(0, end - position + 1);
  let out = `${VERSION};${count.toString(36)};${exact ? 'c' : mode.lag.toString(36)};`;
  if (count === 0) return out;
  let last = Number.NaN;
  let first = true;
  let next = position;
  const add = (offset: number, value: number): boolean => {
    if (value === last) return true;
    if (out.length > MAX_METADATA_CHARS) {
      const tail = Math.max(0, tailValue);
      if (last !== tail) out += `,${runText(offset - position, tail)}`;
      return false;
    }
    out += `${first ? '' : ','}${runText(offset - position, value)}`;
    first = false;
    last = value;
    return true;
  };
  for (const entry of entries) {
    const offset = Number(entry.offset);
    if (offset > end) break;
    if (offset < position) continue;
    if (!add(offset, valueOf(entry, exact))) return out;
    next = offset + 1;
  }
  if (carry && next <= end) {
    for (const [at, value] of carry.carried(next, end)) if (!add(at, value)) return out;
  }
  return out;
}

/** A decoded log: what a record of the partition has been through before. */
export class AttemptLog {
  readonly position: number;
  /** Last offset of the window (`position − 1` when empty). */
  readonly end: number;
  /** Written by a graceful close: exact. Else running: see {@link lag}. */
  readonly clean: boolean;
  /** Running log: offsets up to `end + lag` may have been handed over unrecorded. */
  readonly lag: number;
  readonly #starts: number[];
  readonly #values: number[];

  constructor(position: number, end: number, clean: boolean, lag: number, starts: number[], values: number[]) {
    this.position = position;
    this.end = end;
    this.clean = clean;
    this.lag = clean ? 0 : lag;
    this.#starts = starts;
    this.#values = values;
  }

  /** Last offset the log says anything about: the window, plus the lag of a running log. */
  get limit(): number {
    return this.end + this.lag;
  }

  /** Highest delivery count recorded (for rounding a truncated log up). */
  get maxValue(): number {
    return Math.max(1, ...this.#values);
  }

  /** Deliveries already made of `offset` (0 when it was never taken), or `'done'` when it was acked. */
  prior(offset: number): number | 'done' {
    if (offset < this.position || offset > this.end) return 0;
    const starts = this.#starts;
    // Last run starting at or before `offset` (binary search; runs are few).
    let lo = 0;
    let hi = starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! <= offset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    // Before the first run (no runs at all): taken once.
    const value = found < 0 ? 1 : this.#values[found]!;
    return value === DONE ? 'done' : value;
  }

  /**
   * What a new owner does with `offset`: `'done'` (acked, skip it), or the attempt to deliver it
   * with and whether it is a suspect (may have been handed over when the owner was lost: handed
   * over alone, recorded first). Undefined: nothing recorded (attempt 1).
   */
  recover(offset: number): 'done' | { attempt: number; suspect: boolean } | undefined {
    if (offset < this.position || offset > this.limit) return undefined;
    const prior = this.prior(offset);
    if (prior === 'done') return 'done';
    if (this.clean) return prior > 0 ? { attempt: prior + 1, suspect: true } : undefined;
    return { attempt: Math.max(prior, 1) + 1, suspect: true };
  }

  /**
   * Runs `[offset, value]` describing `[from, to]` for a new owner's log, so that it reads back
   * (as a running log) with at least the attempts this log gives: deliveries counted
   * (`attempt − 1` of {@link recover}, 0 past the limit) or done.
   */
  *carried(from: number, to: number): IterableIterator<[number, number]> {
    const cuts = new Set<number>([from]);
    for (const s of this.#starts) if (s > from && s <= to) cuts.add(s);
    if (this.end + 1 > from && this.end + 1 <= to) cuts.add(this.end + 1);
    if (this.limit + 1 > from && this.limit + 1 <= to) cuts.add(this.limit + 1);
    for (const at of [...cuts].sort((a, b) => a - b)) {
      const r = this.recover(at);
      yield [at, r === 'done' ? DONE : r === undefined ? 0 : r.attempt - 1];
    }
  }
}

/**
 * Reads the metadata committed with `position` (the next offset to read). Undefined when there is
 * none or it is not ours (another tool committed the offset): nothing is known to be taken.
 */
export function decodeAttemptLog(metadata: string | null | undefined, position: number): AttemptLog | undefined {
  if (!metadata || !Number.isSafeInteger(position) || position < 0) return undefined;
  const parts = metadata.split(';');
  let end: number;
  let clean: boolean;
  let lag = 0;
  let runs: string;
  if (parts[0] === VERSION && parts.length === 4) {
    const count = parseBase36(parts[1]);
    if (count === undefined) return undefined;
    end = position + count - 1;
    clean = parts[2] === 'c';
    if (!clean) {
      const l = parseBase36(parts[2]);
      if (l === undefined) return undefined;
      lag = l;
    }
    runs = parts[3]!;
    if (count === 0 && runs !== '') return undefined;
  } else if (parts[0] === LEGACY && parts.length === 3) {
    // Recorded before every hand-over: as exact as a clean log.
    const window = parseBase36(parts[1]);
    if (window === undefined) return undefined;
    end = position + window;
    clean = true;
    runs = parts[2]!;
  } else return undefined;
  const starts: number[] = [];
  const values: number[] = [];
  if (runs !== '') {
    for (const run of runs.split(',')) {
      const [at, value] = run.split(':');
      const start = parseBase36(at);
      const n = value === '_' ? DONE : parseBase36(value);
      if (start === undefined || n === undefined || position + start > end) return undefined;
      if (starts.length > 0 && position + start <= starts.at(-1)!) return undefined;
      starts.push(position + start);
      values.push(n);
    }
  }
  return new AttemptLog(position, end, clean, lag, starts, values);
}

function parseBase36(text: string | undefined): number | undefined {
  if (text === undefined || !/^[0-9a-z]{1,10}$/.test(text)) return undefined;
  const n = parseInt(text, 36);
  return Number.isSafeInteger(n) ? n : undefined;
}
