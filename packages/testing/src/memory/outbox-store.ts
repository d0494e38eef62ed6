import type { Envelope, MqError } from '@mqkit/core/driver';
import type { OutboxRecord, OutboxStats, OutboxStore } from '@mqkit/core';

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
  published: boolean;
  lastError?: string;
}

/**
 * An {@link OutboxStore} in memory, with the claim and per-key order rules of a real one: for
 * unit tests of outbox flows and the demo.
 */
export class MemoryOutboxStore implements OutboxStore<MemoryTx> {
  #rows: Row[] = [];
  #seq = 0;
  #waiters: Array<() => void> = [];

  /** Runs `fn` as a transaction: its enqueued messages are stored only if it resolves. */
  async transaction<R>(fn: (tx: MemoryTx) => Promise<R>): Promise<R> {
    const tx: MemoryTx = { staged: [] };
    const result = await fn(tx);
    for (const envelope of tx.staged) {
      this.#rows.push({ seq: ++this.#seq, envelope, attempts: 0, dueAt: 0, claimedUntil: 0, published: false });
    }
    if (tx.staged.length > 0) this.#waiters.splice(0).forEach((w) => w());
    return result;
  }

  async enqueue(tx: MemoryTx, envelopes: readonly Envelope[]): Promise<void> {
    tx.staged.push(...envelopes);
  }

  async claim(limit: number, leaseMs: number): Promise<OutboxRecord[]> {
    const now = Date.now();
    const blocked = new Set<string>();
    const claimed: OutboxRecord[] = [];
    for (const row of this.#rows) {
      if (claimed.length >= limit) break;
      if (row.published) continue;
      const key = row.envelope.key;
      if (key !== undefined && blocked.has(key)) continue;
      const available = row.claimedUntil <= now && row.dueAt <= now;
      if (!available) {
        if (key !== undefined) blocked.add(key);
        continue;
      }
      row.claimedUntil = now + leaseMs;
      claimed.push({ seq: String(row.seq), envelope: row.envelope, attempts: row.attempts });
    }
    return claimed;
  }

  async markPublished(records: readonly OutboxRecord[]): Promise<void> {
    const seqs = new Set(records.map((r) => Number(r.seq)));
    for (const row of this.#rows) if (seqs.has(row.seq)) row.published = true;
  }

  async markFailed(record: OutboxRecord, error: MqError, retryAt: Date): Promise<void> {
    const row = this.#rows.find((r) => r.seq === Number(record.seq));
    if (!row) return;
    row.attempts += 1;
    row.claimedUntil = 0;
    row.dueAt = retryAt.getTime();
    row.lastError = error.code;
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
    const pending = this.#rows.filter((r) => !r.published);
    const oldest = pending.reduce((min, r) => Math.min(min, r.envelope.timestamp), Number.POSITIVE_INFINITY);
    return {
      pending: pending.length,
      failing: pending.filter((r) => r.lastError !== undefined).length,
      oldestPendingAgeMs: pending.length === 0 ? 0 : Date.now() - oldest,
    };
  }

  /** Rows stored, published or not (until {@link MemoryOutboxStore.maintain}). */
  get size(): number {
    return this.#rows.length;
  }

  /** Rows not yet published. */
  get pending(): number {
    return this.#rows.filter((r) => !r.published).length;
  }
}
