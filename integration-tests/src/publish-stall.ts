/**
 * The publish-stall fault scenario shared by `<broker>/publish-stall-fault.test.ts` (issue 16,
 * defect 9): the broker process is paused (SIGSTOP), so it neither answers nor closes its
 * sockets. `publish.timeoutMs` must still be a hard deadline (TIMEOUT, retryable, on time), and
 * pending publishes must stay bounded (`publish.maxPending`: the rest wait for room, then TIMEOUT,
 * without ever reaching the driver). After SIGCONT new publishes succeed.
 */
import { connect, MqError, type Client, type ConnectOptions } from '@mqkit/core';
import type { Adapter } from '@mqkit/core/driver';
import { wrapAdapter } from '@mqkit/testing';
import { expect } from 'vitest';
import { withBrokerPaused } from './broker-pause.ts';
import { waitFor } from './wait.ts';

export const STALL_TIMEOUT_MS = 3_000;
export const STALL_MAX_PENDING = 20;
/** Timer slices, a loaded 2-core machine and the event loop's own delays. */
const SLACK_MS = 1_500;

export interface StallTarget {
  /** Name for `scripts/brokers/brokers.sh` (`kafka`, `rabbitmq`, …). */
  readonly broker: string;
  readonly url: string;
  readonly adapter: Adapter;
  readonly options?: ConnectOptions['options'];
  /**
   * The adapter's driver call stays pending while the broker is paused (no client-side request
   * timeout shorter than the pause), so timed-out messages keep their room until SIGCONT.
   */
  readonly sendsHang: boolean;
  /** A fresh topic that publishes can reach (created, or with a group subscribed). */
  prepare(client: Client): Promise<string>;
  /** Optional extra health check after the resume, with ids published then. */
  afterResume?(topic: string, ids: readonly string[]): Promise<void>;
}

export interface StallResult {
  readonly timeouts: number;
  readonly waitedForRoom: number;
  readonly firstTimeoutMs: number;
  readonly lastTimeoutMs: number;
}

async function settle(p: Promise<unknown>, started: number): Promise<{ error: unknown; ms: number }> {
  return p.then(
    () => ({ error: undefined, ms: Date.now() - started }),
    (error: unknown) => ({ error, ms: Date.now() - started }),
  );
}

/** Runs the scenario; returns what it saw (already asserted). Closes what it opens. */
export async function publishStallScenario(target: StallTarget): Promise<StallResult> {
  // Distinct messages handed to the driver (a client-side request timeout makes core resend).
  const handedIds = new Set<string>();
  const counted = wrapAdapter(target.adapter, (driver) => ({
    send: (envelopes) => {
      for (const e of envelopes) handedIds.add(e.id);
      return driver.send(envelopes);
    },
  }));
  const publish = { timeoutMs: STALL_TIMEOUT_MS, maxPending: STALL_MAX_PENDING };
  const client = await connect(target.url, { adapters: [counted], options: target.options, publish });
  const clients: Client[] = [client];
  try {
    const topic = await target.prepare(client);
    // Connected, metadata known, producer ready: the stall is the only thing that can go wrong.
    await waitFor('a warm-up publish', () => client.publish(topic, { warm: true }).then(() => true), { timeoutMs: 60_000 });

    const result = await withBrokerPaused(target.broker, async () => {
      const before = handedIds.size;
      const started = Date.now();
      // One more than fits twice over: maxPending go to the (hung) driver, the rest wait for room.
      const all = Array.from({ length: 2 * STALL_MAX_PENDING + 1 }, (_, n) => settle(client.publish(topic, { n }), started));
      const outcomes = await Promise.all(all);
      for (const { error, ms } of outcomes) {
        // Where the client fails a request on its own first, the publish may end with that
        // (retryable) error once no retry fits before the deadline: typed and on time either way.
        if (target.sendsHang) expect(MqError.is(error, 'TIMEOUT'), `expected TIMEOUT, got ${String(error)}`).toBe(true);
        else expect(MqError.is(error), `expected an MqError, got ${String(error)}`).toBe(true);
        expect((error as MqError).retryable).toBe(true);
        expect(ms).toBeGreaterThanOrEqual(STALL_TIMEOUT_MS - 50);
        expect(ms).toBeLessThan(STALL_TIMEOUT_MS + SLACK_MS);
      }
      const sent = handedIds.size - before;
      expect(sent).toBe(STALL_MAX_PENDING);
      const waitedForRoom = outcomes.filter(({ error }) => MqError.is(error, 'TIMEOUT') && error.details.reason !== undefined).length;
      expect(waitedForRoom).toBe(STALL_MAX_PENDING + 1);

      // Where the driver call simply hangs, the timed-out messages are still inside it and keep
      // their room: a publish now waits for room, times out, and never reaches the driver either.
      // (Where the client gives up on its own first, the room is free again and it is sent.)
      const late = await settle(client.publish(topic, { late: true }), Date.now());
      expect(MqError.is(late.error, 'TIMEOUT')).toBe(true);
      expect(late.ms).toBeLessThan(STALL_TIMEOUT_MS + SLACK_MS);
      if (target.sendsHang) expect(handedIds.size - before).toBe(STALL_MAX_PENDING);
      else expect(handedIds.size - before).toBeLessThanOrEqual(STALL_MAX_PENDING + 1);
      const times = outcomes.map((o) => o.ms);
      return { timeouts: outcomes.length + 1, waitedForRoom: waitedForRoom + 1, firstTimeoutMs: Math.min(...times), lastTimeoutMs: Math.max(...times) };
    });

    // Resumed: the hung calls settle and free their room; new publishes succeed.
    await waitFor('a publish to succeed after SIGCONT', () => client.publish(topic, { resumed: true }).then(() => true), { timeoutMs: 60_000 });
    const receipts = await Promise.all(Array.from({ length: 10 }, (_, n) => client.publish(topic, { after: n })));
    expect(receipts).toHaveLength(10);
    // The broker itself is healthy: a fresh client connects and publishes.
    const fresh = await connect(target.url, { adapters: [target.adapter], options: target.options, publish: { timeoutMs: 30_000 } });
    clients.push(fresh);
    const last = await fresh.publish(topic, { fresh: true });
    await target.afterResume?.(topic, [...receipts.map((r) => r.id), last.id]);
    return result;
  } finally {
    await Promise.allSettled(clients.map((c) => c.close({ timeoutMs: 1_000 })));
  }
}
