import { metrics, type Counter, type MeterProvider } from '@opentelemetry/api';
import { backoffDelay, DEFAULT_BACKOFF, sleep, type BackoffPolicy } from './backoff.ts';
import type { Client } from './client.ts';
import { toMqError, type MqError } from './errors.ts';
import { silentLogger, type Logger } from './logger.ts';
import type { Envelope } from './message.ts';
import type { PublishOptions } from './publish.ts';

/** One stored outbox message. */
export interface OutboxRecord {
  /** Store-assigned position: records of one key are published in this order. */
  readonly seq: string;
  readonly envelope: Envelope;
  /** Publish attempts so far. */
  readonly attempts: number;
}

/**
 * Where the transactional outbox keeps messages. `Tx` is the caller's open database transaction:
 * {@link OutboxStore.enqueue} writes inside it, so the message exists iff the business write
 * commits.
 */
export interface OutboxStore<Tx> {
  /** Stores envelopes inside the caller's transaction. */
  enqueue(tx: Tx, envelopes: readonly Envelope[]): Promise<void>;
  /**
   * Claims up to `limit` due records for this relay for `leaseMs` (others skip them: e.g. `FOR
   * UPDATE SKIP LOCKED`), oldest first. A record whose key has an older unpublished record that is
   * not claimed here must not be returned (per-key order).
   */
  claim(limit: number, leaseMs: number): Promise<OutboxRecord[]>;
  /** Records the broker confirmed: never publish them again. */
  markPublished(records: readonly OutboxRecord[]): Promise<void>;
  /** A publish failed: release the claim and make the record due again at `retryAt`. */
  markFailed(record: OutboxRecord, error: MqError, retryAt: Date): Promise<void>;
  /** Resolves when new records may be due (e.g. LISTEN/NOTIFY), or after `timeoutMs`. */
  waitForWork?(timeoutMs: number, signal: AbortSignal): Promise<void>;
  /** Housekeeping, e.g. deleting published records past their retention; the relay calls it periodically. */
  maintain?(): Promise<void>;
  /** Backlog figures, exported by the relay as gauges. */
  stats?(): Promise<OutboxStats>;
}

/** Backlog of an outbox, for gauges and alerts. */
export interface OutboxStats {
  /** Records not yet published. */
  readonly pending: number;
  /** Pending records whose last publish attempt failed. */
  readonly failing: number;
  /** Age of the oldest pending record in ms (0 when none). */
  readonly oldestPendingAgeMs: number;
}

/**
 * Writes messages into the outbox inside the caller's transaction, encoded and validated exactly
 * as `publish()` would send them.
 */
export class Outbox<Tx> {
  readonly #store: OutboxStore<Tx>;
  readonly #client: Client;

  constructor(store: OutboxStore<Tx>, client: Client) {
    this.#store = store;
    this.#client = client;
  }

  /** Enqueues one message in `tx`; returns its id. */
  async enqueue<T>(tx: Tx, topic: string, payload: T, options: PublishOptions<T> = {}): Promise<string> {
    const envelope = this.#client.prepare(topic, payload, options);
    await this.#store.enqueue(tx, [envelope]);
    return envelope.id;
  }
}

/** Options of {@link OutboxRelay}. */
export interface OutboxRelayOptions {
  /** Records claimed per round. @default 500 */
  batchSize?: number;
  /** How long a claim lasts if this relay dies. @default 30000 */
  leaseMs?: number;
  /** Poll interval when the store cannot wake the relay (or as a fallback). @default 1000 */
  pollIntervalMs?: number;
  /** Backoff for failed publishes. */
  backoff?: Partial<BackoffPolicy>;
  /** How often to call the store's `maintain()`. @default 60000 */
  maintenanceIntervalMs?: number;
  /** Where the relay's metrics go. @default the global OpenTelemetry meter provider */
  meterProvider?: MeterProvider;
  logger?: Logger;
}

/**
 * Moves outbox records to the broker with reliable send: claim, publish, mark published. Safe to
 * run several at once (claims are exclusive). A crash after publish but before marking republishes
 * (at-least-once): consumers dedup by message id.
 */
export class OutboxRelay<Tx> {
  readonly #store: OutboxStore<Tx>;
  readonly #client: Client;
  readonly #batchSize: number;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #backoff: BackoffPolicy;
  readonly #logger: Logger;
  readonly #maintenanceMs: number;
  readonly #failures: Counter;
  readonly #published: Counter;
  #abort: AbortController | undefined;
  #loop: Promise<void> | undefined;
  #lastMaintenance = 0;

  constructor(store: OutboxStore<Tx>, client: Client, options: OutboxRelayOptions = {}) {
    this.#store = store;
    this.#client = client;
    this.#batchSize = options.batchSize ?? 500;
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#pollMs = options.pollIntervalMs ?? 1_000;
    this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.#logger = options.logger ?? silentLogger;
    this.#maintenanceMs = options.maintenanceIntervalMs ?? 60_000;
    const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter('@mqkit/core');
    this.#published = meter.createCounter('mqkit.outbox.published', { description: 'Outbox records published' });
    this.#failures = meter.createCounter('mqkit.outbox.publish_failures', { description: 'Outbox publishes that failed and will be retried' });
    if (store.stats) {
      const pending = meter.createObservableGauge('mqkit.outbox.pending', { description: 'Outbox records not yet published' });
      const failing = meter.createObservableGauge('mqkit.outbox.failing', { description: 'Pending outbox records whose last attempt failed' });
      const oldest = meter.createObservableGauge('mqkit.outbox.oldest_age', { description: 'Age of the oldest pending outbox record', unit: 'ms' });
      meter.addBatchObservableCallback(async (result) => {
        const stats = await store.stats!();
        result.observe(pending, stats.pending);
        result.observe(failing, stats.failing);
        result.observe(oldest, stats.oldestPendingAgeMs);
      }, [pending, failing, oldest]);
    }
  }

  /** Starts the relay loop (idempotent). */
  start(): void {
    if (this.#loop) return;
    this.#abort = new AbortController();
    this.#loop = this.#run(this.#abort.signal);
  }

  /** Stops after the current round. */
  async stop(): Promise<void> {
    this.#abort?.abort();
    await this.#loop;
    this.#loop = undefined;
  }

  /** One round: claim, publish, mark. Returns how many records were published. */
  async relayOnce(): Promise<number> {
    const records = await this.#store.claim(this.#batchSize, this.#leaseMs);
    if (records.length === 0) return 0;
    const outcomes = await this.#client.sendEnvelopes(records.map((r) => r.envelope));
    // Records go out in claim order in one reliable send, so a key's records reach the broker in
    // order. If one fails and a later one of its key succeeds, the retry arrives after it: the
    // same reordering any broker redelivery causes; ordered consumers should carry a sequence.
    const published: OutboxRecord[] = [];
    for (let i = 0; i < records.length; i += 1) {
      const record = records[i]!;
      const outcome = outcomes[i]!;
      if (outcome.ok) {
        published.push(record);
        continue;
      }
      const retryAt = new Date(Date.now() + backoffDelay(this.#backoff, record.attempts + 1));
      this.#failures.add(1, { 'messaging.destination.name': record.envelope.topic, 'error.type': outcome.error.code });
      this.#logger.warn({ id: record.envelope.id, topic: record.envelope.topic, code: outcome.error.code }, 'outbox publish failed; will retry');
      await this.#store.markFailed(record, outcome.error, retryAt);
    }
    if (published.length > 0) {
      await this.#store.markPublished(published);
      this.#published.add(published.length);
    }
    return published.length;
  }

  async #maintain(): Promise<void> {
    if (!this.#store.maintain || Date.now() - this.#lastMaintenance < this.#maintenanceMs) return;
    this.#lastMaintenance = Date.now();
    try {
      await this.#store.maintain();
    } catch (err) {
      this.#logger.warn({ err: toMqError(err) }, 'outbox maintenance failed');
    }
  }

  async #run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.#maintain();
        const n = await this.relayOnce();
        failures = 0;
        if (n > 0) continue;
        if (this.#store.waitForWork) await this.#store.waitForWork(this.#pollMs, signal);
        else await sleep(this.#pollMs, signal);
      } catch (err) {
        if (signal.aborted) break;
        failures += 1;
        this.#logger.error({ err: toMqError(err) }, 'outbox relay round failed');
        await sleep(backoffDelay(this.#backoff, failures), signal).catch(() => {});
      }
    }
  }
}
