/** Bodies of the issue #16 adversarial checks that read the same on every real broker. */
import { bytesCodec, type Client, type SubscribeOptions } from '@mqkit/core';
import type { Driver, DriverDelivery } from '@mqkit/core/driver';
import { expect } from 'vitest';
import { uniqueGroup } from './names.ts';
import { sleep, waitFor } from './wait.ts';

/** Ticks of a 100 ms interval over 3 s (30 when nothing else runs). */
export async function timerTicks(): Promise<number> {
  let ticks = 0;
  const timer = setInterval(() => (ticks += 1), 100);
  await sleep(3000);
  clearInterval(timer);
  return ticks;
}

/**
 * Defect 1: 50 messages nacked without delay on `topic`. A 100 ms timer keeps >= 90 % of the ticks
 * it gets without the loop (measured first) once `running` redeliveries have happened, and
 * `close({ timeoutMs: 5000 })` returns within `closeWithinMs`.
 */
export async function expectNackLoopKeepsTimers(
  c: Client,
  topic: string,
  how: { maxAttempts: number; running: number; runningTimeoutMs: number; closeWithinMs: number; options?: SubscribeOptions<unknown>['options'] },
): Promise<void> {
  const control = await timerTicks();
  let deliveries = 0;
  const sub = await c.subscribe(topic, {
    group: uniqueGroup('g'),
    concurrency: 16,
    ...(how.options ? { options: how.options } : {}),
    retry: { maxAttempts: how.maxAttempts },
    handler: async (d) => {
      deliveries += 1;
      await d.nack();
    },
  });
  await Promise.all(Array.from({ length: 50 }, (_, i) => c.publish(topic, { i })));
  await waitFor('redeliveries going', () => deliveries >= how.running, { timeoutMs: how.runningTimeoutMs });
  const ticks = await timerTicks();
  // 90 % of what the same timer gets without the loop, measured first: the shared 2-core host
  // alone costs a few ticks under load.
  expect(ticks).toBeGreaterThanOrEqual(Math.floor(control * 0.9));
  const started = Date.now();
  await sub.close({ timeoutMs: 5000 });
  expect(Date.now() - started).toBeLessThan(how.closeWithinMs);
}

/** What a forged-properties subscription saw: each body (as text) with its attempt. */
export type Seen = Array<{ body: string; attempt: number }>;

/**
 * Defect 12: subscribes to `topic` with maxAttempts 3, recording every delivery; the body
 * `attempts` fails until its third attempt, any other body is acked at once.
 */
export async function subscribeForgedTargets(c: Client, topic: string, options?: SubscribeOptions<unknown>['options']): Promise<Seen> {
  const seen: Seen = [];
  await c.subscribe(topic, {
    group: uniqueGroup('g'),
    codec: bytesCodec,
    ...(options ? { options } : {}),
    retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 1, jitter: false },
    handler: (d) => {
      const body = new TextDecoder().decode(d.payload);
      seen.push({ body, attempt: d.attempt });
      if (body === 'attempts' && d.attempt < 3) throw new Error('retry me');
    },
  });
  return seen;
}

/** The attempts `seen` recorded for `body`, in order. */
export function attemptsOf(seen: Seen, body: string): number[] {
  return seen.filter((s) => s.body === body).map((s) => s.attempt);
}

/**
 * Defect 4: a handler on `topic` that fails every delivery (retrying at once) under `maxAttempts`,
 * and a recorder of the headers of what reaches `${topic}-dlq` (subscribed first).
 */
export async function subscribeAlwaysFailing(
  c: Client,
  topic: string,
  maxAttempts: number,
  options?: SubscribeOptions<unknown>['options'],
): Promise<{ attempts: number[]; dead: Array<Record<string, string>> }> {
  const attempts: number[] = [];
  const dead: Array<Record<string, string>> = [];
  await c.subscribe(`${topic}-dlq`, { group: uniqueGroup('dlq'), handler: (d) => void dead.push({ ...d.headers }) });
  await c.subscribe(topic, {
    group: uniqueGroup('g'),
    ...(options ? { options } : {}),
    retry: { maxAttempts, initialDelayMs: 1, maxDelayMs: 1, jitter: false },
    handler: (d) => {
      attempts.push(d.attempt);
      throw new Error('not yet');
    },
  });
  return { attempts, dead };
}

/**
 * Defect 4 at the driver: a subscription with maxAttempts Infinity is accepted and delivers a
 * message with attempt 1. `subscribed` runs between subscribe and send (to inspect the broker).
 * Closes the subscription and the driver.
 */
export async function expectUnlimitedDriverDelivers(
  driver: Driver,
  topic: string,
  how: { deliveryTimeoutMs: number; options?: Record<string, unknown>; subscribed?: () => Promise<void> },
): Promise<void> {
  const spec = { topic, group: uniqueGroup('g'), maxInFlight: 4, ordered: false, maxAttempts: Number.POSITIVE_INFINITY, deadLetterTopic: `${topic}-dlq`, options: how.options ?? {} };
  const deliveries: Array<Pick<DriverDelivery, 'attempt' | 'ack'>> = [];
  // Its first receive count is the attempt core would hand over.
  const receiver = await driver.receiver(spec);
  const abort = new AbortController();
  const loop = (async () => {
    while (!abort.signal.aborted) {
      for (const m of await receiver.receive(1, abort.signal)) deliveries.push({ attempt: m.deliveryCount, ack: async () => void (await receiver.ack([m])) });
    }
  })();
  const sub = {
    close: async () => {
      abort.abort();
      await loop.catch(() => undefined);
      await receiver.close();
    },
  };
  try {
    await how.subscribed?.();
    const [outcome] = await driver.send([{ id: 'inf-1', topic, headers: {}, body: new Uint8Array([1]), timestamp: Date.now() }]);
    expect(outcome?.ok).toBe(true);
    await waitFor('the delivery', () => deliveries.length >= 1, { timeoutMs: how.deliveryTimeoutMs });
    expect(deliveries[0]!.attempt).toBe(1);
    await deliveries[0]!.ack();
  } finally {
    await sub.close();
    await driver.close();
  }
}
