/**
 * Delivery attempts that survive a crash, written into the consumer group's own offset-commit
 * `metadata` string (OffsetCommit carries one per partition, next to the committed position).
 *
 * Kafka keeps no delivery count. Before the adapter hands a record to core it makes sure a commit
 * of its partition (the unchanged position, plus this metadata) records that the record was taken.
 * The metadata describes the window `[position, end]` of offsets the member has taken, as runs of
 * one value each:
 *
 * - `_`: acked, only held back by an unfinished earlier offset (not redelivered after a crash);
 * - `n ≥ 0`: `n` deliveries made (or about to be made) of that offset.
 *
 * Offsets past `end` were never taken. Whoever next owns the partition (after a crash, a hang past
 * the close deadline, a rebalance) reads it back and delivers offset `o` of the window with
 * attempt `n + 1`: a lost member counts as one attempt for every record it had taken and not
 * acked, as SQS's receive count does for received messages.
 *
 * Format (`mq1;<end>;<offset>:<value>,…`, offsets relative to the position, base 36): a run starts
 * at its offset and lasts until the next one or `end`. Only group members can commit offsets, so
 * a foreign producer cannot forge it; anything unparseable reads as "nothing recorded".
 */

const VERSION = 'mq1';

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
   * Whether that attempt counts while running: handed, or free to be handed before the next
   * commit. A record held back from that (see the subscription's suspects) counts only what it
   * went through.
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

/**
 * Encodes the window `[position, end]`. `entries` are the partition's fetched records from the
 * first unsettled one on, in offset order (records past `end` are ignored). When the runs would
 * exceed {@link MAX_METADATA_CHARS}, the rest of the window becomes one run of `tailValue` (at
 * least every remaining attempt): a crash may then count too many attempts there, never too few.
 */
export function encodeAttemptLog(
  position: number,
  end: number,
  entries: Iterable<LoggedOffset>,
  tailValue: number,
  exact = false,
): string {
  if (end < position) return VERSION;
  let out = `${VERSION};${(end - position).toString(36)};`;
  let last = Number.NaN;
  let first = true;
  for (const entry of entries) {
    const offset = Number(entry.offset);
    if (offset > end) break;
    if (offset < position) continue;
    const value = valueOf(entry, exact);
    if (value === last) continue;
    if (out.length > MAX_METADATA_CHARS) {
      const tail = Math.max(0, tailValue);
      if (last !== tail) out += `,${runText(offset - position, tail)}`;
      return out;
    }
    out += `${first ? '' : ','}${runText(offset - position, value)}`;
    first = false;
    last = value;
  }
  return out;
}

/** A decoded log: what a record of the partition has been through before. */
export class AttemptLog {
  readonly position: number;
  readonly end: number;
  readonly #starts: number[];
  readonly #values: number[];

  constructor(position: number, end: number, starts: number[], values: number[]) {
    this.position = position;
    this.end = end;
    this.#starts = starts;
    this.#values = values;
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
}

/**
 * Reads the metadata committed with `position` (the next offset to read). Undefined when there is
 * none or it is not ours (another tool committed the offset): nothing is known to be taken.
 */
export function decodeAttemptLog(metadata: string | null | undefined, position: number): AttemptLog | undefined {
  if (!metadata || !metadata.startsWith(`${VERSION};`) || !Number.isSafeInteger(position) || position < 0) return undefined;
  const parts = metadata.split(';');
  if (parts.length !== 3) return undefined;
  const window = parseBase36(parts[1]!);
  if (window === undefined) return undefined;
  const starts: number[] = [];
  const values: number[] = [];
  if (parts[2] !== '') {
    for (const run of parts[2]!.split(',')) {
      const [at, value] = run.split(':');
      const start = parseBase36(at);
      const n = value === '_' ? DONE : parseBase36(value);
      if (start === undefined || n === undefined || start > window) return undefined;
      if (starts.length > 0 && position + start <= starts.at(-1)!) return undefined;
      starts.push(position + start);
      values.push(n);
    }
  }
  return new AttemptLog(position, position + window, starts, values);
}

function parseBase36(text: string | undefined): number | undefined {
  if (text === undefined || !/^[0-9a-z]{1,10}$/.test(text)) return undefined;
  const n = parseInt(text, 36);
  return Number.isSafeInteger(n) ? n : undefined;
}
