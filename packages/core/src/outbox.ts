import { metrics, type Counter, type MeterProvider } from '@opentelemetry/api';
import { z } from 'zod';
import { backoffDelay, DEFAULT_BACKOFF, sleep, type BackoffPolicy } from './backoff.ts';
import type { Client } from './client.ts';
import { configError, parseOptions, unlimitedInt } from './config.ts';
import { MqError, toMqError, type ErrorCode } from './errors.ts';
import { silentLogger, type Logger } from './logger.ts';
import type { Envelope } from './message.ts';
import type { PublishOptions } from './publish.ts';
import { healthError, isoTime, type HealthError, type OutboxRelayHealth } from './health.ts';

/** One stored outbox message, as handed to a relay by {@link OutboxStore.claim}. */
export interface OutboxRecord {
  /** Store-assigned position: records of one key are published in this order. */
  readonly seq: string;
  readonly envelope: Envelope;
  /**
   * Publish attempts, this claim included: every claim counts, also one whose relay died or hung
   * before marking it (its lease lapsed).
   */
  readonly attempts: number;
  /**
   * Its previous claim lapsed unmarked (its relay died or hung while publishing it): claimed
   * alone, and past `maxAttempts` dead without being published again. Stores that cannot tell
   * leave it out.
   */
  readonly lapsed?: boolean;
  /**
   * The claim this record was handed out under: unique per claim. The store's marks apply only
   * while the record is still held under this claim, so a relay whose lease lapsed and was taken
   * over by another cannot overwrite the new owner's state.
   */
  readonly claimToken: string;
}

/** A record that failed for good and waits for an operator (see {@link OutboxStore.listDead}). */
export interface DeadOutboxRecord {
  readonly seq: string;
  readonly envelope: Envelope;
  /** Publish attempts (claims), the last one included. */
  readonly attempts: number;
  /** `CODE: message` of the last failure. */
  readonly lastError: string;
  /** When it was moved to the dead state. */
  readonly deadAt: Date;
}

/** Paging of {@link OutboxStore.listDead}. */
export interface ListDeadOptions {
  /** At most this many, oldest first. @default 100 */
  readonly limit?: number;
  /** Only records after this `seq` (the last one of the previous page). */
  readonly afterSeq?: string;
}

/**
 * Where the transactional outbox keeps messages. `Tx` is the caller's open database transaction:
 * {@link OutboxStore.enqueue} writes inside it, so the message exists iff the business write
 * commits.
 *
 * Per-key order: a key's records are claimed in `seq` order, and never past a record of the key
 * that is leased by a relay or waiting for its retry. A record that has failed before (a retry)
 * is claimed without the later records of its key, which follow once it is published. A dead
 * record no longer holds its key back.
 *
 * Attempts are counted by {@link OutboxStore.claim}, one per claim, so a record whose relay dies
 * while publishing it (a payload that crashes the process, an OOM) counts too and cannot loop for
 * ever. A record whose claim lapsed unmarked is a *suspect*: it is claimed alone (the claim
 * returns it and nothing else) and holds its key back, so a record that kills every relay counts
 * one attempt per death while the records claimed with it the first time count that one only.
 */
export interface OutboxStore<Tx> {
  /** Stores envelopes inside the caller's transaction. */
  enqueue(tx: Tx, envelopes: readonly Envelope[]): Promise<void>;
  /**
   * Claims up to `limit` due records for this relay for `leaseMs` (others skip them: e.g. `FOR
   * UPDATE SKIP LOCKED`), oldest first, under a new claim token, adding one to each one's
   * `attempts`. If a record's previous claim lapsed unmarked, returns only the oldest such record
   * (with `lapsed: true`). Per-key order as described on {@link OutboxStore}.
   */
  claim(limit: number, leaseMs: number): Promise<OutboxRecord[]>;
  /**
   * Records the broker confirmed: never publish them again. Only records still held under their
   * `claimToken` are marked; returns how many were.
   */
  markPublished(records: readonly OutboxRecord[]): Promise<number>;
  /**
   * A publish failed: release the claim (its attempt was counted by the claim) and make the
   * record due again at `retryAt`. Only if still held under its `claimToken`; returns 1 if it
   * was, else 0.
   */
  markFailed(record: OutboxRecord, error: MqError, retryAt: Date): Promise<number>;
  /**
   * A publish failed for good (or the record's claims lapsed too often): move the record to the
   * dead state (not claimed again, no longer holding its key back) until
   * {@link OutboxStore.replayDead}. Only if still held under its `claimToken`; returns 1 if it
   * was, else 0.
   */
  markDead(record: OutboxRecord, error: MqError): Promise<number>;
  /** Dead records, oldest first. */
  listDead(options?: ListDeadOptions): Promise<DeadOutboxRecord[]>;
  /**
   * Makes dead records pending again with a fresh attempt budget, in their original place of
   * their key's order (before the key's pending records). `seqs` omitted: every dead record.
   * Returns how many were replayed.
   */
  replayDead(seqs?: readonly string[]): Promise<number>;
  /** Deletes dead records for good. `seqs` omitted: every dead record. Returns how many went. */
  discardDead(seqs?: readonly string[]): Promise<number>;
  /** Resolves when new records may be due (e.g. LISTEN/NOTIFY), or after `timeoutMs`. */
  waitForWork?(timeoutMs: number, signal: AbortSignal): Promise<void>;
  /** Housekeeping, e.g. deleting published records past their retention; the relay calls it periodically. */
  maintain?(): Promise<void>;
  /** Backlog figures, exported by the relay as gauges. */
  stats?(): Promise<OutboxStats>;
}

/** Backlog of an outbox, for gauges and alerts. */
export interface OutboxStats {
  /** Records not yet published (dead ones not included). */
  readonly pending: number;
  /** Pending records whose last publish attempt failed. */
  readonly failing: number;
  /** Age of the oldest pending record in ms (0 when none). */
  readonly oldestPendingAgeMs: number;
  /** Dead records waiting for an operator (replay or discard). */
  readonly dead: number;
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

  /**
   * Records that failed for good (after the relay's `maxAttempts` failures of their own, e.g.
   * `TOO_LARGE`, `UNROUTABLE`, `NOT_FOUND`), oldest first: page with `afterSeq`.
   */
  listDead(options?: ListDeadOptions): Promise<DeadOutboxRecord[]> {
    return this.#store.listDead(options);
  }

  /**
   * Makes dead records pending again with a fresh attempt budget (e.g. once the topic exists or
   * the size limit is raised); `seqs` omitted: all of them. A replayed record goes out before the
   * pending records of its key, but after those published while it was dead. Returns how many.
   */
  replayDead(seqs?: readonly string[]): Promise<number> {
    return this.#store.replayDead(seqs);
  }

  /** Deletes dead records for good; `seqs` omitted: all of them. Returns how many. */
  discardDead(seqs?: readonly string[]): Promise<number> {
    return this.#store.discardDead(seqs);
  }
}

/**
 * Failures that say nothing about the record itself: the broker is unreachable or refuses this
 * client. They are retried for ever (with backoff) and never make a record dead, or an outage
 * would empty the outbox into the dead state.
 */
const ENVIRONMENT_ERRORS: ReadonlySet<ErrorCode> = new Set(['AUTH', 'CONFIG', 'CLOSED', 'ABORTED']);

/** Whether a failed publish counts against the record's `maxAttempts` (it may go dead). */
function recordsOwnFailure(error: MqError): boolean {
  return !error.retryable && !ENVIRONMENT_ERRORS.has(error.code);
}

const ms = z.number().int().nonnegative();

const relayBackoffSchema = z
  .object({
    initialDelayMs: ms,
    maxDelayMs: ms,
    multiplier: z.number().min(1),
    jitter: z.boolean(),
  })
  .partial()
  .strict();

/** Options of {@link OutboxRelay}, validated at construction (CONFIG naming the field). */
const relayOptionsSchema = z
  .object({
    /** Records claimed per round. @default 500 */
    batchSize: z.number().int().positive().default(500),
    /**
     * How long a claim lasts if this relay dies: another relay takes the records over after it.
     * Must be greater than the client's `publish.timeoutMs`, so that a claim outlasts the publish
     * it covers. @default 30000, or twice the publish timeout if that is more
     */
    leaseMs: z.number().int().positive().optional(),
    /** Poll interval when the store cannot wake the relay (or as a fallback). @default 1000 */
    pollIntervalMs: z.number().int().positive().default(1_000),
    /** Backoff for failed publishes, by the record's attempt. @default core's default backoff */
    backoff: relayBackoffSchema.optional(),
    /**
     * Publish attempts a record gets when its failures are its own (non-retryable errors such
     * as `TOO_LARGE`, `UNROUTABLE`, `NOT_FOUND`, `INVALID_MESSAGE`, `REJECTED`): such a failure
     * at attempt `maxAttempts` moves it to the dead state. These errors are retried up to then
     * because some heal (a queue or topic declared a moment later). Retryable failures
     * (broker unreachable, timeouts) and `AUTH`/`CONFIG`/`CLOSED` are retried for ever and never
     * make a record dead. `Infinity`: never dead. @default 10
     */
    maxAttempts: unlimitedInt(1).default(10),
    /** How often to call the store's `maintain()`. @default 60000 */
    maintenanceIntervalMs: ms.default(60_000),
    /** Where the relay's metrics go. @default the global OpenTelemetry meter provider */
    meterProvider: z
      .custom<MeterProvider>((v) => typeof (v as MeterProvider | undefined)?.getMeter === 'function', 'must be an OpenTelemetry MeterProvider')
      .optional(),
    /** pino-compatible logger. @default silent */
    logger: z
      .custom<Logger>((v) => typeof (v as Logger | undefined)?.warn === 'function' && typeof (v as Logger).error === 'function', 'must be a logger')
      .optional(),
  })
  .strict();

/** Options of {@link OutboxRelay} (all optional; defaults in the TSDoc of each field). */
export type OutboxRelayOptions = z.input<typeof relayOptionsSchema>;

/**
 * Moves outbox records to the broker with reliable send: claim, publish, mark published. Safe to
 * run several at once (claims are exclusive, and marks are fenced by the claim). A crash after
 * publish but before marking republishes (at-least-once): consumers dedup by message id.
 *
 * A failed record is retried with backoff; while it is, the later records of its key wait (a
 * retry is claimed alone for its key). After `maxAttempts` failures of its own it is dead: see
 * {@link Outbox.listDead} and {@link Outbox.replayDead}; its key moves on. So is a record claimed
 * more than `maxAttempts` times because its relays died or hung while publishing it (it is not
 * published again: it may be what kills them).
 */
export class OutboxRelay<Tx> {
  readonly #store: OutboxStore<Tx>;
  readonly #client: Client;
  readonly #batchSize: number;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #backoff: BackoffPolicy;
  readonly #maxAttempts: number;
  readonly #logger: Logger;
  readonly #maintenanceMs: number;
  readonly #failures: Counter;
  readonly #published: Counter;
  readonly #deadLettered: Counter;
  readonly #claimsLost: Counter;
  #abort: AbortController | undefined;
  #loop: Promise<void> | undefined;
  #lastMaintenance = 0;
  /** Health while running: the failing streak of rounds, the last error, the last good round. */
  #failingSince: number | undefined;
  #lastError: HealthError | undefined;
  #lastRoundAt: number | undefined;
  #detach: (() => void) | undefined;

  /** Throws {@link MqError} CONFIG for an invalid option, or a `leaseMs` not above the client's publish timeout. */
  constructor(store: OutboxStore<Tx>, client: Client, options: OutboxRelayOptions = {}) {
    const o = parseOptions(relayOptionsSchema, options, 'OutboxRelay');
    const publishTimeoutMs = client.publishTimeoutMs;
    if (o.leaseMs !== undefined && o.leaseMs <= publishTimeoutMs) {
      // A lease that ends while its publish may still be running lets a second relay publish
      // the same records concurrently, out of order with the first.
      throw configError(
        `OutboxRelay: leaseMs (${o.leaseMs}) must be greater than the client's publish.timeoutMs (${publishTimeoutMs}), so that a claim outlasts its publish`,
      );
    }
    this.#store = store;
    this.#client = client;
    this.#batchSize = o.batchSize;
    this.#leaseMs = o.leaseMs ?? Math.max(30_000, 2 * publishTimeoutMs);
    this.#pollMs = o.pollIntervalMs;
    this.#backoff = { ...DEFAULT_BACKOFF, ...o.backoff };
    this.#maxAttempts = o.maxAttempts;
    this.#logger = o.logger ?? silentLogger;
    this.#maintenanceMs = o.maintenanceIntervalMs;
    const meter = (o.meterProvider ?? metrics.getMeterProvider()).getMeter('@mqkit/core');
    this.#published = meter.createCounter('mqkit.outbox.published', { description: 'Outbox records published' });
    this.#failures = meter.createCounter('mqkit.outbox.publish_failures', { description: 'Outbox publishes that failed (retried, or dead)' });
    this.#deadLettered = meter.createCounter('mqkit.outbox.dead_lettered', { description: 'Outbox records moved to the dead state' });
    this.#claimsLost = meter.createCounter('mqkit.outbox.claims_lost', {
      description: 'Outbox records whose claim another relay took over before this one marked them',
    });
    if (store.stats) {
      const pending = meter.createObservableGauge('mqkit.outbox.pending', { description: 'Outbox records not yet published' });
      const failing = meter.createObservableGauge('mqkit.outbox.failing', { description: 'Pending outbox records whose last attempt failed' });
      const oldest = meter.createObservableGauge('mqkit.outbox.oldest_age', { description: 'Age of the oldest pending outbox record', unit: 'ms' });
      const dead = meter.createObservableGauge('mqkit.outbox.dead', { description: 'Dead outbox records waiting for replay or discard' });
      meter.addBatchObservableCallback(async (result) => {
        const stats = await store.stats!();
        result.observe(pending, stats.pending);
        result.observe(failing, stats.failing);
        result.observe(oldest, stats.oldestPendingAgeMs);
        result.observe(dead, stats.dead);
      }, [pending, failing, oldest, dead]);
    }
  }

  /** The claim lease in ms (given, or the default derived from the client's publish timeout). */
  get leaseMs(): number {
    return this.#leaseMs;
  }

  /** Starts the relay loop (idempotent). */
  start(): void {
    if (this.#loop) return;
    this.#detach = this.#client.attachRelay(this);
    this.#abort = new AbortController();
    this.#loop = this.#run(this.#abort.signal);
  }

  /** Stops after the current round. */
  async stop(): Promise<void> {
    this.#abort?.abort();
    await this.#loop;
    this.#loop = undefined;
    this.#detach?.();
    this.#detach = undefined;
  }

  /** Running, failing (its rounds fail, since `failingSince`) or stopped; reported by {@link Client.health}. */
  health(): OutboxRelayHealth & { readonly failingSinceMs: number | undefined } {
    const state = this.#loop === undefined ? 'stopped' : this.#failingSince !== undefined ? 'failing' : 'running';
    return { state, failingSince: isoTime(this.#failingSince), failingSinceMs: this.#failingSince, lastError: this.#lastError, lastRoundAt: isoTime(this.#lastRoundAt) };
  }

  /** One round: claim, publish, mark. Returns how many records were published and marked. */
  async relayOnce(): Promise<number> {
    const claimed = await this.#store.claim(this.#batchSize, this.#leaseMs);
    if (claimed.length === 0) return 0;
    const records: OutboxRecord[] = [];
    for (const record of claimed) {
      // A lapse counts as a failure of the record's own: it may be what kills its relays.
      if (record.lapsed === true && record.attempts > this.#maxAttempts) {
        await this.#dead(record, new MqError('INTERNAL', `its relay died or hung before marking it (the claim of attempt ${record.attempts - 1} lapsed): not published again`));
      } else records.push(record);
    }
    if (records.length === 0) return 0;
    const outcomes = await this.#client.sendEnvelopes(records.map((r) => r.envelope));
    // Records go out in claim order in one reliable send, so a key's records reach the broker in
    // order, and a key's retry is claimed alone. Only if the broker refuses one record and accepts
    // a later one of its key in the same driver call (a per-message failure) is the later one
    // ahead of a record that will be retried: it is logged below.
    const published: OutboxRecord[] = [];
    const retriedKeys = new Set<string>();
    for (let i = 0; i < records.length; i += 1) {
      const record = records[i]!;
      const outcome = outcomes[i]!;
      const key = record.envelope.key;
      if (outcome.ok) {
        if (key !== undefined && retriedKeys.has(key)) {
          this.#logger.warn({ id: record.envelope.id, topic: record.envelope.topic }, 'outbox record published ahead of an earlier record of its key that failed in the same send');
        }
        published.push(record);
        continue;
      }
      // A record that went dead does not hold its key back: the later ones are not out of order.
      if ((await this.#fail(record, outcome.error)) === 'retry' && key !== undefined) retriedKeys.add(key);
    }
    if (published.length === 0) return 0;
    const marked = await this.#store.markPublished(published);
    this.#published.add(published.length);
    if (marked < published.length) this.#lost(published.length - marked, 'published');
    return marked;
  }

  /** Books a failed publish: dead at the cap for a failure of the record's own, else a retry. */
  async #fail(record: OutboxRecord, error: MqError): Promise<'dead' | 'retry'> {
    const attempt = record.attempts;
    const { topic, id } = record.envelope;
    this.#failures.add(1, { 'messaging.destination.name': topic, 'error.type': error.code });
    if (recordsOwnFailure(error) && attempt >= this.#maxAttempts) {
      await this.#dead(record, error);
      return 'dead';
    }
    const retryAt = new Date(Date.now() + backoffDelay(this.#backoff, attempt));
    this.#logger.warn({ id, topic, code: error.code, attempts: attempt }, 'outbox publish failed; will retry');
    if ((await this.#store.markFailed(record, error, retryAt)) === 0) this.#lost(1, 'failed');
    return 'retry';
  }

  async #dead(record: OutboxRecord, error: MqError): Promise<void> {
    const { topic, id } = record.envelope;
    this.#logger.error({ id, topic, code: error.code, attempts: record.attempts, err: error.message }, 'outbox record failed for good; moved to the dead state (replay with replayDead)');
    const moved = await this.#store.markDead(record, error);
    if (moved === 1) this.#deadLettered.add(1, { 'messaging.destination.name': topic, 'error.type': error.code });
    else this.#lost(1, 'dead');
  }

  /** Marks that found the claim taken over: the new owner publishes and marks those records. */
  #lost(count: number, mark: string): void {
    this.#claimsLost.add(count);
    this.#logger.warn({ count, mark }, 'outbox claim taken over by another relay before it was marked (lease too short?); left to the new owner');
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
        this.#failingSince = undefined;
        this.#lastRoundAt = Date.now();
        if (n > 0) continue;
        if (this.#store.waitForWork) await this.#store.waitForWork(this.#pollMs, signal);
        else await sleep(this.#pollMs, signal);
      } catch (err) {
        if (signal.aborted) break;
        failures += 1;
        this.#failingSince ??= Date.now();
        this.#lastError = healthError(err);
        this.#logger.error({ err: toMqError(err) }, 'outbox relay round failed');
        await sleep(backoffDelay(this.#backoff, failures), signal).catch(() => {});
      }
    }
  }
}
