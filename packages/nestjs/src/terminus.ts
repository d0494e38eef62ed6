/**
 * `@mqkit/nestjs/terminus`: a health indicator for `@nestjs/terminus` (an optional peer: only this
 * entry point loads it).
 */
import { Client, toMqError, type ClientHealth } from '@mqkit/core';
import { configError, parseOptions, withDeadline } from '@mqkit/core/driver';
import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { z } from 'zod';

/** Options of {@link MqkitHealthIndicator.check}. */
export interface MqkitHealthCheckOptions {
  /**
   * `readiness`: down unless `client.health().ready` (open, nothing failing). `liveness`: down
   * only when not `live` (closed, or failing longer than `maxFailingMs`), `degraded` while
   * failing for less (terminus keeps HTTP 200 then). @default 'readiness'
   */
  probe?: 'readiness' | 'liveness';
  /** How long a part may fail before the client is not live (core's `health({ maxFailingMs })`). @default 60000 */
  maxFailingMs?: number;
  /**
   * Also ask the broker: `client.verify({ topic })`, a round trip that fails when the broker is
   * unreachable or refuses this client, or the topic is gone. Without it the check uses only what
   * the client already knows (no network).
   */
  topic?: string;
  /** Bound of the `topic` round trip; down when it takes longer. @default 3000 */
  timeoutMs?: number;
}

const checkSchema = z
  .object({
    probe: z.enum(['readiness', 'liveness']).optional(),
    maxFailingMs: z.number().int().positive().optional(),
    topic: z.string().min(1).optional(),
    timeoutMs: z.number().int().positive().optional(),
  })
  .strict();

/** What was failing, one line each (codes and messages only: health never carries secrets). */
function failures(h: ClientHealth): string[] {
  const out: string[] = [];
  if (h.closed) out.push('client closed');
  if (h.publisher.state === 'failing') out.push(`publisher: ${h.publisher.lastError?.code ?? 'failing'} since ${h.publisher.failingSince}`);
  for (const s of h.subscriptions) {
    if (s.state === 'failing') out.push(`subscription ${s.topic}/${s.group}: ${s.lastReceiveError?.code ?? 'failing'} since ${s.failingSince}`);
  }
  for (const r of h.outboxRelays) {
    if (r.state === 'failing') out.push(`outbox relay: ${r.lastError?.code ?? 'failing'} since ${r.failingSince}`);
  }
  return out;
}

/**
 * Reports the mqkit client's health to a terminus `HealthCheckService`, from `client.health()`
 * (publisher, subscriptions, outbox relays; see core's README), optionally with a broker round
 * trip:
 *
 * ```ts
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.mq.check('broker', { topic: 'orders' })]); }
 * ```
 *
 * Add it to the providers of a module that imports `TerminusModule`.
 */
@Injectable()
export class MqkitHealthIndicator {
  readonly #client: Client;
  readonly #health: HealthIndicatorService;

  constructor(@Inject(Client) client: Client, @Inject(HealthIndicatorService) health: HealthIndicatorService) {
    this.#client = client;
    this.#health = health;
  }

  /**
   * `up` with `{ adapter, ready, live }` (and `topic`), `degraded` (liveness probe, failing for
   * less than `maxFailingMs`), or `down` with `failing` (what fails, by error code) or `error`
   * (the round trip's). Invalid options throw CONFIG.
   */
  async check<const Key extends string>(key: Key, options: MqkitHealthCheckOptions = {}): Promise<HealthIndicatorResult<Key>> {
    const { probe = 'readiness', maxFailingMs, topic, timeoutMs = 3_000 } = parseOptions(checkSchema, options, 'MqkitHealthIndicator.check');
    if (typeof key !== 'string' || key.length === 0) throw configError('MqkitHealthIndicator.check: the key must be a non-empty string');
    const session = this.#health.check(key);
    const h = this.#client.health(maxFailingMs === undefined ? undefined : { maxFailingMs });
    const failing = failures(h);
    const data = { adapter: h.adapter, ready: h.ready, live: h.live, ...(topic === undefined ? {} : { topic }), ...(failing.length > 0 ? { failing } : {}) };
    if (probe === 'readiness' ? !h.ready : !h.live) return session.down(data);
    if (topic !== undefined) {
      try {
        await withDeadline(this.#client.verify({ topic }), timeoutMs, `verify(${topic})`);
      } catch (err) {
        const e = toMqError(err);
        return session.down({ ...data, error: `${e.code}: ${e.message}` });
      }
    }
    return h.ready ? session.up(data) : session.degraded(data);
  }
}
