import type { Envelope, MqError } from '@mqkit/core/driver';
import type { DeadOutboxRecord, ListDeadOptions, OutboxRecord, OutboxStats, OutboxStore } from '@mqkit/core';

/** A unit of work against {@link MemoryOutboxStore}: staged rows appear only on commit. */
export interface MemoryTx {
  readonly staged: Envelope[];
}

interface Row {
  seq: number;
  envelope: Envelope;
  attempts: number;
  dueAt: number;
  claimedUntil: number;
  /** The claim the row is held under ('' when never claimed). */
  token: string;
  published: boolean;
  deadAt: Date | undefined;
  lastError?: string;
}

/**
 * An {@link OutboxStore} in memory, with the claim, fencing, per-key order and dead-state rules
 * of a real one: for unit tests of outbox flows and the demo.
 */
export class MemoryOutboxStore implements OutboxStore<MemoryTx> {
  #rows: Row[] = [];
  #seq = 0;
  #claims = 0;
  #waiters: Array<() => void> = [];

  /** Runs `fn` as a transaction: its enqueued messages are stored only if it resolves. */
  async transaction<R>(fn: (tx: MemoryTx) => Promise<R>): Promise<R> {
    const tx: MemoryTx = { staged: [] };
    const result = await fn(tx);
    for (const envelope of tx.staged) {
      this.#rows.push({ seq: ++this.#seq, envelope, attempts: 0, dueAt: 0, claimedUntil: 0, token: '', published: false, deadAt: undefined });
    }
    if (tx.staged.length > 0) this.#wake();
    return result;
  }

  async enqueue(tx: MemoryTx, envelopes: readonly Envelope[]): Promise<void> {
    tx.staged.push(...envelopes);
  }

  async claim(limit: number, leaseMs: number): Promise<OutboxRecord[]> {
    const now = Date.now();
    const token = `claim-${++this.#claims}`;
    const take = (row: Row, lapsed: boolean): OutboxRecord => {
      row.claimedUntil = now + leaseMs;
      row.token = token;
      row.attempts += 1; // every claim is an attempt, a lapsed one too
      return { seq: String(row.seq), envelope: row.envelope, attempts: row.attempts, lapsed, claimToken: token };
    };
    // A row whose claim lapsed unmarked (its relay died or hung) goes out alone, oldest first.
    const held = new Set<string>();
    for (const row of this.#rows) {
      if (!isPending(row)) continue;
      const key = row.envelope.key;
      if (key !== undefined && held.has(key)) continue;
      if (isLapsed(row, now)) return [take(row, true)];
      if (key !== undefined) held.add(key);
    }
    const blocked = new Set<string>();
    const claimed: OutboxRecord[] = [];
    for (const row of this.#rows) {
      if (claimed.length >= limit) break;
      if (!isPending(row)) continue;
      const key = row.envelope.key;
      if (key !== undefined && blocked.has(key)) continue;
      const available = row.claimedUntil <= now && row.dueAt <= now && !isLapsed(row, now);
      // Held elsewhere, lapsed, or waiting for its retry: the key waits. A retry goes out alone for its key.
      if (key !== undefined && (!available || row.attempts > 0)) blocked.add(key);
      if (!available) continue;
      claimed.push(take(row, false));
    }
    return claimed;
  }

  async markPublished(records: readonly OutboxRecord[]): Promise<number> {
    let marked = 0;
    for (const record of records) {
      const row = this.#held(record);
      if (!row) continue;
      row.published = true;
      row.claimedUntil = 0;
      marked += 1;
    }
    return marked;
  }

  async markFailed(record: OutboxRecord, error: MqError, retryAt: Date): Promise<number> {
    const row = this.#held(record);
    if (!row) return 0;
    row.claimedUntil = 0;
    row.token = '';
    row.dueAt = retryAt.getTime();
    row.lastError = `${error.code}: ${error.message}`;
    return 1;
  }

  async markDead(record: OutboxRecord, error: MqError): Promise<number> {
    const row = this.#held(record);
    if (!row) return 0;
    row.claimedUntil = 0;
    row.token = '';
    row.deadAt = new Date();
    row.lastError = `${error.code}: ${error.message}`;
    return 1;
  }

  async listDead(options: ListDeadOptions = {}): Promise<DeadOutboxRecord[]> {
    const after = options.afterSeq === undefined ? 0 : Number(options.afterSeq);
    return this.#rows
      .filter((r) => r.deadAt !== undefined && r.seq > after)
      .slice(0, options.limit ?? 100)
      .map((r) => ({ seq: String(r.seq), envelope: r.envelope, attempts: r.attempts, lastError: r.lastError ?? '', deadAt: r.deadAt! }));
  }

  async replayDead(seqs?: readonly string[]): Promise<number> {
    const rows = this.#dead(seqs);
    for (const row of rows) {
      row.deadAt = undefined;
      row.attempts = 0;
      row.dueAt = 0;
    }
    if (rows.length > 0) this.#wake();
    return rows.length;
  }

  async discardDead(seqs?: readonly string[]): Promise<number> {
    const rows = new Set(this.#dead(seqs));
    this.#rows = this.#rows.filter((r) => !rows.has(r));
    return rows.size;
  }

  async waitForWork(timeoutMs: number, signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal.addEventListener('abort', done, { once: true });
      this.#waiters.push(done);
    });
  }

  /** Forgets published rows. */
  async maintain(): Promise<void> {
    this.#rows = this.#rows.filter((r) => !r.published);
  }

  async stats(): Promise<OutboxStats> {
    const pending = this.#rows.filter(isPending);
    const oldest = pending.reduce((min, r) => Math.min(min, r.envelope.timestamp), Number.POSITIVE_INFINITY);
    return {
      pending: pending.length,
      // Failed (waiting for a retry) or lapsed; not merely under a live claim.
      failing: pending.filter((r) => r.attempts > 0 && (r.token === '' || r.claimedUntil <= Date.now())).length,
      oldestPendingAgeMs: pending.length === 0 ? 0 : Date.now() - oldest,
      dead: this.#rows.filter((r) => r.deadAt !== undefined).length,
    };
  }

  /** Rows stored, published, pending or dead (until {@link MemoryOutboxStore.maintain}). */
  get size(): number {
    return this.#rows.length;
  }

  /** Rows not yet published and not dead. */
  get pending(): number {
    return this.#rows.filter(isPending).length;
  }

  /** The record's row if it is still pending under the record's claim (fencing). */
  #held(record: OutboxRecord): Row | undefined {
    const row = this.#rows.find((r) => r.seq === Number(record.seq));
    return row && isPending(row) && row.token === record.claimToken ? row : undefined;
  }

  #dead(seqs: readonly string[] | undefined): Row[] {
    const wanted = seqs === undefined ? undefined : new Set(seqs.map(Number));
    return this.#rows.filter((r) => r.deadAt !== undefined && (wanted === undefined || wanted.has(r.seq)));
  }

  #wake(): void {
    this.#waiters.splice(0).forEach((w) => w());
  }
}

function isPending(row: Row): boolean {
  return !row.published && row.deadAt === undefined;
}

/** Claimed, never marked, and the lease is over: its relay died or hung while publishing it. */
function isLapsed(row: Row, now: number): boolean {
  return row.token !== '' && row.claimedUntil <= now;
}
