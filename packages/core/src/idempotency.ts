import type { Delivery, Middleware } from './delivery.ts';
import { MqError } from './errors.ts';

/** What {@link DedupStore.begin} found. */
export type BeginResult =
  /** Nobody processed this key: the caller holds a lease on it until `leaseMs` passes. */
  | 'acquired'
  /** The key was completed before: skip the effect. */
  | 'duplicate'
  /** Another consumer holds a live lease: try again later. */
  | 'busy';

/**
 * Remembers which messages a consumer group has processed. Semantics, shared by every store:
 * - `begin` takes a **processing lease** (expires after `leaseMs`), so a consumer that dies mid-
 *   handler does not block the message forever: once the lease lapses, a redelivery runs again.
 * - `complete` turns the lease into a **done** mark kept for `ttlMs`; later deliveries are skipped.
 * - `release` drops the lease after a failed handler, so the retry can run at once.
 * A crash after the handler's effect but before `complete` therefore means the effect can run
 * twice (at-least-once). For exactly-once, write the done mark in the same database transaction
 * as the effect (the Postgres store of `@mqkit/postgres`).
 */
export interface DedupStore {
  begin(key: string, leaseMs: number): Promise<BeginResult>;
  complete(key: string, ttlMs: number): Promise<void>;
  release(key: string): Promise<void>;
}

/** Options of {@link idempotent}. */
export interface IdempotencyOptions {
  /** How long a processing lease lasts; longer than your slowest handler. @default 30000 */
  leaseMs?: number;
  /** How long a done mark is kept; longer than the broker may redeliver. @default 7 days */
  ttlMs?: number;
  /** Redelivery delay when another consumer holds the lease. @default 1000 */
  busyRetryDelayMs?: number;
  /** Dedup key of a delivery. @default `${group}:${id}` (each group gets its own effect) */
  keyOf?: (delivery: Delivery<unknown>) => string;
}

/**
 * Idempotent consume: the handler's effect happens once per message id (per group), however
 * often the broker redelivers. See {@link DedupStore} for the crash semantics.
 */
export function idempotent<T = unknown>(store: DedupStore, options: IdempotencyOptions = {}): Middleware<T> {
  const leaseMs = options.leaseMs ?? 30_000;
  const ttlMs = options.ttlMs ?? 7 * 24 * 3600_000;
  const busyDelay = options.busyRetryDelayMs ?? 1_000;
  const keyOf = options.keyOf ?? ((d: Delivery<unknown>) => `${d.group}:${d.id}`);
  return async (delivery, next) => {
    const key = keyOf(delivery as Delivery<unknown>);
    const state = await store.begin(key, leaseMs);
    if (state === 'duplicate') {
      await delivery.ack();
      return;
    }
    if (state === 'busy') {
      // Another consumer is on it: come back later (at once where the broker cannot delay).
      await delivery.nack({ delayMs: busyDelay }).catch((err: unknown) => {
        if (MqError.is(err, 'UNSUPPORTED')) return delivery.nack();
        throw err;
      });
      return;
    }
    try {
      await next();
    } catch (err) {
      await store.release(key);
      throw err;
    }
    await store.complete(key, ttlMs);
  };
}

/**
 * A {@link DedupStore} in process memory: for tests and single-process services. Entries are
 * forgotten when they expire (checked lazily and swept every `sweepEvery` writes).
 */
export class MemoryDedupStore implements DedupStore {
  readonly #entries = new Map<string, { state: 'processing' | 'done'; expiresAt: number }>();
  readonly #now: () => number;
  #writes = 0;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  async begin(key: string, leaseMs: number): Promise<BeginResult> {
    const now = this.#now();
    const entry = this.#entries.get(key);
    if (entry && entry.expiresAt > now) return entry.state === 'done' ? 'duplicate' : 'busy';
    this.#entries.set(key, { state: 'processing', expiresAt: now + leaseMs });
    this.#sweep(now);
    return 'acquired';
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    this.#entries.set(key, { state: 'done', expiresAt: this.#now() + ttlMs });
  }

  async release(key: string): Promise<void> {
    if (this.#entries.get(key)?.state === 'processing') this.#entries.delete(key);
  }

  /** Number of live entries (for tests and metrics). */
  get size(): number {
    return this.#entries.size;
  }

  #sweep(now: number): void {
    if (++this.#writes % 1024 !== 0) return;
    for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(key);
  }
}
