import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { sleep } from './backoff.ts';
import { parseOptions } from './config.ts';
import type { Delivery, Middleware } from './delivery.ts';
import { MqError } from './errors.ts';
import { silentLogger, type Logger } from './logger.ts';

/** What {@link DedupStore.begin} found. */
export type BeginResult =
  /**
   * Nobody processed this key: the caller holds a lease on it until `leaseMs` passes. `token`
   * identifies this holder: renew, complete and release only act while the lease is still its.
   */
  | { readonly state: 'acquired'; readonly token: string }
  /** The key was completed before: skip the effect. */
  | { readonly state: 'duplicate' }
  /** Another consumer holds a live lease: try again later. */
  | { readonly state: 'busy' };

/**
 * Remembers which messages a consumer group has processed. Semantics, shared by every store:
 * - `begin` takes a **processing lease** (expires after `leaseMs`) and returns its holder's
 *   token, so a consumer that dies mid-handler does not block the message forever: once the lease
 *   lapses, a redelivery runs again (and gets a new token).
 * - `renew` extends a live lease by `leaseMs`, only for its holder (`false` once it lapsed or
 *   was taken over); `idempotent()` renews while the handler runs.
 * - `complete` turns the holder's lease into a **done** mark kept for `ttlMs`; later deliveries
 *   are skipped. It writes only while the key is still the holder's or free (a lapsed lease nobody
 *   took): `false` means another holder took the key over or completed it, and is left as it is.
 * - `release` drops the holder's lease after a failed or handed-back handler, so the retry can
 *   run at once; it never drops a done mark or another holder's lease.
 * A crash after the handler's effect but before `complete`, or a holder that lost its lease (a
 * stalled process), means the effect can run twice (at-least-once). For exactly-once, write the
 * done mark in the same database transaction as the effect (the Postgres store of
 * `@mqkit/postgres`).
 */
export interface DedupStore {
  begin(key: string, leaseMs: number): Promise<BeginResult>;
  renew(key: string, token: string, leaseMs: number): Promise<boolean>;
  complete(key: string, token: string, ttlMs: number): Promise<boolean>;
  release(key: string, token: string): Promise<boolean>;
}

const DAY = 24 * 3600_000;
/** Longest delay a Node timer honours. */
const MAX_TIMER_MS = 2_147_483_647;

const isFunction = (v: unknown): boolean => typeof v === 'function';

/** How often a copy waiting for a busy lease asks the store again. */
const BUSY_POLL_MS = 100;

/** Options of {@link idempotent}, validated by {@link parseOptions} (unknown keys rejected). */
export const idempotencyOptionsSchema = z
  .object({
    /**
     * How long a processing lease lasts without renewal. The lease is renewed every `leaseMs / 3`
     * while the handler runs, so it only has to outlast a stalled process or a store hiccup.
     * @default 30000
     */
    leaseMs: z.number().int().positive().max(MAX_TIMER_MS).default(30_000),
    /** How long a done mark is kept, in ms; longer than the broker may redeliver. @default 7 days */
    ttlMs: z.number().int().positive().default(7 * DAY),
    /**
     * How long a copy waits while another consumer holds its lease (a concurrent duplicate or
     * redelivery), checking every 100 ms: when the holder finishes, the copy is acked as a
     * duplicate (or runs, if the holder handed the message back). Waiting keeps the copy's
     * attempt: every delivery counts against `retry.maxAttempts`, so handing it back at once would
     * dead-letter a duplicate whenever the first copy is slow. `0`: hand back at once.
     * @default leaseMs (a crashed holder's lease has expired by then)
     */
    busyWaitMs: z.number().int().nonnegative().max(MAX_TIMER_MS).optional(),
    /** Redelivery delay when the lease is still held after `busyWaitMs`. @default 1000 */
    busyRetryDelayMs: z.number().int().nonnegative().max(MAX_TIMER_MS).default(1_000),
    /** Dedup key of a delivery. @default `${group}:${id}` (each group gets its own effect) */
    keyOf: z.custom<(delivery: Delivery<unknown>) => string>(isFunction, 'must be a function').optional(),
    /**
     * Where lost leases and store failures are reported (warn). Pass the logger you gave
     * `connect()`. @default silent
     */
    logger: z
      .custom<Logger>((v) => typeof v === 'object' && v !== null && typeof (v as Logger).warn === 'function' && typeof (v as Logger).error === 'function', 'must be a logger')
      .optional(),
  })
  .strict();

/** Options of {@link idempotent}. */
export type IdempotencyOptions = z.input<typeof idempotencyOptionsSchema>;

/**
 * Idempotent consume: the handler's effect happens once per message id (per group), however
 * often the broker redelivers. See {@link DedupStore} for the crash semantics.
 *
 * How the handler settled decides the mark (read from `delivery.settlement` after it returns):
 * - resolved, or acked itself: the message is marked **done**;
 * - threw, `nack()`ed ("not ready yet") or `deadLetter()`ed: the lease is **released** and no
 *   done mark is written, so the redelivery (or a replay from the dead-letter topic) runs the
 *   handler again: a handed-back message did not have its effect.
 *
 * The lease is renewed every `leaseMs / 3` while the handler runs, so a slow handler keeps it and
 * a concurrent redelivery waits for it (`busy`, see `busyWaitMs`) instead of running the effect a
 * second time. If the lease is lost anyway (the process stalled longer than `leaseMs`, or the
 * store was unreachable), the done mark of the new holder is not overwritten and a warning is
 * logged: the effect may then have run twice (at-least-once).
 */
export function idempotent<T = unknown>(store: DedupStore, options: IdempotencyOptions = {}): Middleware<T> {
  const o = parseOptions(idempotencyOptionsSchema, options, 'idempotent');
  const { leaseMs, ttlMs, busyRetryDelayMs } = o;
  const busyWaitMs = o.busyWaitMs ?? leaseMs;
  const logger = o.logger ?? silentLogger;
  const keyOf = o.keyOf ?? ((d: Delivery<unknown>) => `${d.group}:${d.id}`);
  return async (delivery, next) => {
    const key = keyOf(delivery);
    let lease = await store.begin(key, leaseMs);
    // Another consumer is on it: wait for its outcome rather than spend an attempt.
    // (Aborted at the close deadline: sleep() rejects and the copy is abandoned, to be redelivered.)
    for (const until = Date.now() + busyWaitMs; lease.state === 'busy' && Date.now() < until; ) {
      await sleep(Math.max(0, Math.min(BUSY_POLL_MS, until - Date.now())), delivery.signal);
      lease = await store.begin(key, leaseMs);
    }
    if (lease.state === 'duplicate') {
      await delivery.ack();
      return;
    }
    if (lease.state === 'busy') {
      // Still held: come back later (at once where the broker cannot delay).
      await delivery.nack({ delayMs: busyRetryDelayMs }).catch((err: unknown) => {
        if (MqError.is(err, 'UNSUPPORTED')) return delivery.nack();
        throw err;
      });
      return;
    }
    const { token } = lease;
    const stopRenewing = keepLease(store, key, token, leaseMs, logger);
    try {
      await next();
    } catch (err) {
      stopRenewing();
      await release(store, key, token, logger);
      throw err;
    }
    stopRenewing();
    if (delivery.settlement === 'nack' || delivery.settlement === 'dead-letter') {
      await release(store, key, token, logger);
      return;
    }
    if (!(await store.complete(key, token, ttlMs))) {
      logger.warn(
        { key, id: delivery.id, group: delivery.group },
        'dedup lease was taken over by another consumer before the handler finished: the effect may have run twice (at-least-once); the other holder\'s mark was kept',
      );
    }
  };
}

/** Drops the lease; a failure is only logged (the lease lapses after leaseMs anyway). */
async function release(store: DedupStore, key: string, token: string, logger: Logger): Promise<void> {
  await store.release(key, token).catch((err: unknown) => {
    logger.warn({ err, key }, 'releasing a dedup lease failed; a retry waits until it lapses');
  });
}

/** Renews the lease every leaseMs / 3 until the returned function is called. */
function keepLease(store: DedupStore, key: string, token: string, leaseMs: number, logger: Logger): () => void {
  let stopped = false;
  let inFlight = false;
  const timer = setInterval(() => {
    if (inFlight) return; // a slow store: do not pile renewals up
    inFlight = true;
    store.renew(key, token, leaseMs).then(
      (held) => {
        inFlight = false;
        if (held || stopped) return;
        stop();
        logger.warn({ key }, 'dedup lease lapsed while the handler runs: a redelivery may run the effect concurrently (raise leaseMs?)');
      },
      (err: unknown) => {
        inFlight = false;
        if (!stopped) logger.warn({ err, key }, 'renewing a dedup lease failed; retrying');
      },
    );
  }, Math.max(1, Math.floor(leaseMs / 3)));
  // A running handler keeps the process alive by itself; this timer must not.
  timer.unref?.();
  const stop = (): void => {
    stopped = true;
    clearInterval(timer);
  };
  return stop;
}

interface MemoryEntry {
  state: 'processing' | 'done';
  /** The holder's token while processing. */
  token: string | undefined;
  expiresAt: number;
}

/**
 * A {@link DedupStore} in process memory: for tests and single-process services. Entries are
 * forgotten when they expire (checked lazily and swept every `sweepEvery` writes).
 */
export class MemoryDedupStore implements DedupStore {
  readonly #entries = new Map<string, MemoryEntry>();
  readonly #now: () => number;
  #writes = 0;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  async begin(key: string, leaseMs: number): Promise<BeginResult> {
    const now = this.#now();
    const entry = this.#entries.get(key);
    if (entry && entry.expiresAt > now) return entry.state === 'done' ? { state: 'duplicate' } : { state: 'busy' };
    const token = randomUUID();
    this.#entries.set(key, { state: 'processing', token, expiresAt: now + leaseMs });
    this.#sweep(now);
    return { state: 'acquired', token };
  }

  async renew(key: string, token: string, leaseMs: number): Promise<boolean> {
    const now = this.#now();
    const entry = this.#entries.get(key);
    if (!this.#holds(entry, token) || entry.expiresAt <= now) return false;
    entry.expiresAt = now + leaseMs;
    return true;
  }

  async complete(key: string, token: string, ttlMs: number): Promise<boolean> {
    const now = this.#now();
    const entry = this.#entries.get(key);
    if (entry && entry.expiresAt > now && !this.#holds(entry, token)) return false;
    this.#entries.set(key, { state: 'done', token: undefined, expiresAt: now + ttlMs });
    return true;
  }

  async release(key: string, token: string): Promise<boolean> {
    if (!this.#holds(this.#entries.get(key), token)) return false;
    this.#entries.delete(key);
    return true;
  }

  /** Number of live entries (for tests and metrics). */
  get size(): number {
    return this.#entries.size;
  }

  #holds(entry: MemoryEntry | undefined, token: string): entry is MemoryEntry {
    return entry?.state === 'processing' && entry.token === token;
  }

  #sweep(now: number): void {
    if (++this.#writes % 1024 !== 0) return;
    for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(key);
  }
}
