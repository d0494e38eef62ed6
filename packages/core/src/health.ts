/**
 * What {@link Client.health} reports: readiness and liveness details for probes (Kubernetes
 * `readinessProbe` / `livenessProbe`), from state the client keeps anyway; no broker round trip.
 */
import { z } from 'zod';
import { parseOptions } from './config.ts';
import { toMqError, type ErrorCode } from './errors.ts';

/** An error as health reports it: no stack, no cause (nothing secret). */
export interface HealthError {
  readonly code: ErrorCode;
  readonly message: string;
  /** When it happened (ISO 8601). */
  readonly at: string;
}

/**
 * `ok`: working. `failing`: its broker calls fail (since `failingSince`) and have not succeeded
 * since. For a subscription also `paused` (its buffer is full: backpressure, not a fault) and
 * `closed`; for an outbox relay `stopped`.
 */
export type ComponentState = 'ok' | 'failing';

/** The publisher (reliable send) of a client. */
export interface PublisherHealth {
  readonly state: ComponentState;
  /** Publishes accepted and not yet answered. */
  readonly pending: number;
  /** Since when publishes fail with none confirmed (ISO 8601). */
  readonly failingSince?: string | undefined;
  readonly lastError?: HealthError | undefined;
}

/** One subscription of a client. */
export interface SubscriptionHealth {
  readonly topic: string;
  readonly group: string;
  readonly state: 'running' | 'paused' | 'failing' | 'closed';
  /** Handlers running now. */
  readonly inFlight: number;
  /** Since when receive calls fail with none succeeding (ISO 8601). */
  readonly failingSince?: string | undefined;
  /** The last failed receive (the broker unreachable, the topic gone, …). */
  readonly lastReceiveError?: HealthError | undefined;
  /** The last failed settle (ack, nack, dead-letter) the runtime made; the broker redelivers those. */
  readonly lastSettleError?: HealthError | undefined;
}

/** One outbox relay started with this client. */
export interface OutboxRelayHealth {
  readonly state: 'running' | 'failing' | 'stopped';
  /** Since when its rounds fail (ISO 8601). */
  readonly failingSince?: string | undefined;
  readonly lastError?: HealthError | undefined;
  /** The end of its last successful round (ISO 8601). */
  readonly lastRoundAt?: string | undefined;
}

/** The result of {@link Client.health}. */
export interface ClientHealth {
  /** `ok` (ready), `degraded` (live, not ready), `down` (not live). */
  readonly status: 'ok' | 'degraded' | 'down';
  /**
   * For a readiness probe: open, and nothing is failing (the publisher, every subscription's
   * receive, every outbox relay). A paused (backpressured) subscription is ready.
   */
  readonly ready: boolean;
  /**
   * For a liveness probe: open, and nothing has been failing for longer than `maxFailingMs`: a
   * restart is the remedy left.
   */
  readonly live: boolean;
  /** The adapter (`kafka`, `rabbitmq`, …). */
  readonly adapter: string;
  /** `close()` was called. */
  readonly closed: boolean;
  readonly publisher: PublisherHealth;
  readonly subscriptions: readonly SubscriptionHealth[];
  readonly outboxRelays: readonly OutboxRelayHealth[];
}

const healthOptionsSchema = z
  .object({
    /** How long a component may fail before `live` turns false. @default 60000 */
    maxFailingMs: z.number().int().positive().optional(),
  })
  .strict();

/** Options of {@link Client.health}. */
export type HealthOptions = z.input<typeof healthOptionsSchema>;

/** @internal parses {@link HealthOptions}; CONFIG naming a bad field. */
export function healthOptions(options: HealthOptions | undefined): { maxFailingMs: number } {
  return { maxFailingMs: parseOptions(healthOptionsSchema, options ?? {}, 'health').maxFailingMs ?? 60_000 };
}

/** @internal an error as health reports it. */
export function healthError(error: unknown, at = Date.now()): HealthError {
  const e = toMqError(error);
  return { code: e.code, message: e.message, at: new Date(at).toISOString() };
}

/** @internal an epoch-ms time as health reports it. */
export function isoTime(at: number | undefined): string | undefined {
  return at === undefined ? undefined : new Date(at).toISOString();
}

/** Publish failures that say the broker or the connection is not working (not the message). */
const BROKER_FAILURES: ReadonlySet<ErrorCode> = new Set(['CONNECTION', 'TIMEOUT', 'NOT_CONFIRMED', 'AUTH']);

/**
 * @internal the publisher's failure streak, fed with every send outcome: a field write per
 * message, the rest only on failures.
 */
export class SendHealth {
  failingSince: number | undefined = undefined;
  lastError: HealthError | undefined = undefined;

  noteOk(): void {
    if (this.failingSince !== undefined) this.failingSince = undefined;
  }

  /** Every failure is the last error; only those about the broker or the connection start a streak. */
  noteFailure(error: unknown): void {
    const now = Date.now();
    const e = toMqError(error);
    if (BROKER_FAILURES.has(e.code)) this.failingSince ??= now;
    this.lastError = healthError(e, now);
  }
}

/** @internal the overall verdict from the parts. */
export function verdict(
  closed: boolean,
  failingSince: ReadonlyArray<number | undefined>,
  maxFailingMs: number,
  now = Date.now(),
): Pick<ClientHealth, 'status' | 'ready' | 'live'> {
  const failing = failingSince.filter((t): t is number => t !== undefined);
  const live = !closed && failing.every((since) => now - since <= maxFailingMs);
  const ready = live && failing.length === 0;
  return { status: ready ? 'ok' : live ? 'degraded' : 'down', ready, live };
}
