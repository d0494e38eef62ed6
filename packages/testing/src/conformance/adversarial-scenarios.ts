/**
 * Adversarial conformance scenarios: hostile handlers (always nack, hang past the close deadline),
 * odd payloads (0 bytes, every byte value, Unicode, near the size limit), extreme retry policies
 * (maxAttempts 1 and Infinity) and mistyped options. Each runs on every adapter, like the
 * scenarios in scenarios.ts (which lists these after its own).
 */
import { bytesCodec, HEADERS, idempotent, MemoryDedupStore, textCodec, type Client, type Subscription } from '@mqkit/core';
import { expect } from 'vitest';
import { expectMqError, rejection } from './assertions.ts';
import type { Scenario } from './scenarios.ts';
import { eventually, pause, type ScenarioContext } from './support.ts';

const fastRetry = { initialDelayMs: 20, maxDelayMs: 100, multiplier: 2, jitter: false };

/** Counts the ticks of a `intervalMs` timer: a starved event loop shows as missing ticks. */
export class TickProbe {
  readonly #timer: NodeJS.Timeout;
  readonly #intervalMs: number;
  readonly #startedAt = performance.now();
  #ticks = 0;
  #last = performance.now();
  #maxGap = 0;

  constructor(intervalMs = 100) {
    this.#intervalMs = intervalMs;
    this.#timer = setInterval(() => {
      const now = performance.now();
      this.#maxGap = Math.max(this.#maxGap, now - this.#last);
      this.#last = now;
      this.#ticks += 1;
    }, intervalMs);
  }

  /** Stops the timer; returns the ticks seen, those due, and the longest gap between two ticks (ms). */
  stop(): { ticks: number; expected: number; maxGapMs: number } {
    clearInterval(this.#timer);
    const now = performance.now();
    this.#maxGap = Math.max(this.#maxGap, now - this.#last);
    return { ticks: this.#ticks, expected: Math.floor((now - this.#startedAt) / this.#intervalMs), maxGapMs: Math.round(this.#maxGap) };
  }
}

/** The share of a 100 ms timer's ticks this host delivers over `ms` with nothing else running here. */
async function tickShare(ms: number): Promise<number> {
  const probe = new TickProbe(100);
  await pause(ms);
  const { ticks, expected } = probe.stop();
  return expected === 0 ? 1 : Math.min(1, ticks / expected);
}

/** Slack on top of a close deadline: the driver's own close (leave the group, end a long poll). */
function closeSlackMs(ctx: ScenarioContext): number {
  return Math.max(2_000, ctx.timing.quietMs * 3);
}

/** Awaits `sub.close({ timeoutMs })` and returns how long it took. */
async function timedClose(sub: Subscription, timeoutMs: number): Promise<number> {
  const started = performance.now();
  await sub.close({ timeoutMs });
  return performance.now() - started;
}

/**
 * The body of the always-nack scenarios: 50 messages nacked on every delivery (by the handler or
 * by a middleware) with maxAttempts 3. The event loop keeps ≥ 90 % of a 100 ms timer's ticks
 * over 3 s, each message reaches the DLQ after exactly 3 deliveries, close() meets its deadline.
 */
async function alwaysNack(ctx: ScenarioContext, where: 'handler' | 'middleware'): Promise<void> {
  const { client, topic } = await ctx.clientAndTopic();
  const deliveries = new Map<string, number[]>();
  let handlerCalls = 0;
  const note = (id: string, attempt: number): void => {
    deliveries.set(id, [...(deliveries.get(id) ?? []), attempt]);
  };
  const dead = await ctx.deadLetters(client, topic, { codec: bytesCodec });
  const sub = await ctx.subscribe(client, topic, {
    group: ctx.group(),
    retry: { ...fastRetry, maxAttempts: 3 },
    middleware:
      where === 'middleware'
        ? [
            async (d) => {
              note(d.id, d.attempt);
              await d.nack(); // and never calls next()
            },
          ]
        : [],
    handler: async (d) => {
      handlerCalls += 1;
      note(d.id, d.attempt);
      await d.nack();
    },
  });
  // What the same timer gets on this host without the loop: host load alone must not fail the test.
  const baseline = await tickShare(1_000);
  const probe = new TickProbe(100);
  const receipts = await Promise.all(Array.from({ length: 50 }, (_, n) => client.publish(topic, { n })));
  await pause(3_000);
  const ticks = probe.stop();
  expect(ticks.ticks, `timer ticks over ${ticks.expected} due (longest gap ${ticks.maxGapMs} ms; ${Math.round(baseline * 100)} % without the loop)`).toBeGreaterThanOrEqual(
    Math.floor(ticks.expected * 0.9 * baseline),
  );
  const ids = new Set(receipts.map((r) => r.id));
  await eventually('all 50 messages in the DLQ', ctx.timing.deliveryMs + ctx.timing.redeliveryMs, () => dead.uniqueIds().size >= 50).catch((err: Error) => {
    const most = Math.max(0, ...[...deliveries.values()].map((a) => a.length));
    throw new Error(`${err.message}: ${dead.uniqueIds().size}/50 dead-lettered; up to ${most} deliveries of one message`);
  });
  await pause(ctx.timing.quietMs);
  expect(dead.uniqueIds()).toEqual(ids);
  for (const d of dead.deliveries) expect(d.headers[HEADERS.deadLetterAttempts], `DLQ attempts header of ${d.id}`).toBe('3');
  for (const id of ids) expect(deliveries.get(id), `deliveries of ${id}`).toEqual([1, 2, 3]);
  if (where === 'middleware') expect(handlerCalls).toBe(0);
  const took = await timedClose(sub, 1_000);
  expect(took).toBeLessThan(1_000 + closeSlackMs(ctx));
}

/** Publishes `body` with bytesCodec and returns the bytes delivered (bytesCodec on both sides). */
async function roundTripBytes(ctx: ScenarioContext, body: Uint8Array, headers: Record<string, string> = {}): Promise<{ bytes: Uint8Array; headers: Readonly<Record<string, string>> }> {
  const { client, topic } = await ctx.clientAndTopic();
  const got = await ctx.recorder<Uint8Array>(client, topic, { codec: bytesCodec });
  const receipt = await client.publish(topic, body, { codec: bytesCodec, headers });
  await got.waitFor('the delivery', ctx.timing.deliveryMs);
  const d = got.deliveries[0]!;
  expect(d.id).toBe(receipt.id);
  expect(d.body.byteLength).toBe(d.payload.byteLength);
  return { bytes: d.payload, headers: d.headers };
}

function sameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.byteLength);
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (!a.equals(b)) {
    let i = 0;
    while (i < a.length && a[i] === b[i]) i += 1;
    throw new Error(`payload differs first at byte ${i} of ${b.length}: got ${a[i]}, sent ${b[i]}`);
  }
}

/** Deterministic pseudo-random bytes (xorshift), so a failure shows the same payload again. */
function noise(length: number, seed = 0x9e3779b9): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i += 1) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Subscribes with `options` merged in and returns the CONFIG error it must reject with. */
async function configRejection(ctx: ScenarioContext, client: Client, topic: string, options: Record<string, unknown>, field: string): Promise<void> {
  const err = await rejection(ctx.subscribe(client, topic, { group: ctx.group(), handler: () => {}, ...options }));
  const mq = expectMqError(err, 'CONFIG');
  expect(mq.message, `CONFIG error for ${JSON.stringify(options)} names ${field}`).toContain(field);
}

export const adversarialScenarios: Scenario[] = [
  {
    id: 'always-nack-handler',
    title: 'a handler that nacks every delivery does not starve the event loop; each message is dead-lettered after exactly maxAttempts deliveries',
    run: (ctx) => alwaysNack(ctx, 'handler'),
  },
  {
    id: 'always-nack-middleware',
    title: 'a middleware that nacks every delivery without calling next() does not starve the event loop; dead-lettered after maxAttempts',
    run: (ctx) => alwaysNack(ctx, 'middleware'),
  },
  {
    id: 'always-nack-unlimited-close',
    title: 'with maxAttempts Infinity, close() ends an always-nack loop within its deadline and nothing is handled afterwards',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      let calls = 0;
      const sub = await ctx.subscribe(client, topic, {
        group: ctx.group(),
        retry: { ...fastRetry, maxAttempts: Number.POSITIVE_INFINITY },
        handler: async (d) => {
          calls += 1;
          await d.nack();
        },
      });
      const probe = new TickProbe(100);
      await Promise.all(Array.from({ length: 10 }, (_, n) => client.publish(topic, { n })));
      await eventually('the nack loop', ctx.timing.deliveryMs, () => calls >= 20);
      await pause(1_500);
      const took = await timedClose(sub, 1_000);
      const ticks = probe.stop();
      // An unlimited nack(0) loop keeps the process busy by design (one yield per redelivery), so
      // on a shared machine the OS makes some ticks late; a starved event loop has none at all.
      expect(ticks.ticks, `timer ticks over ${ticks.expected} due (longest gap ${ticks.maxGapMs} ms)`).toBeGreaterThanOrEqual(Math.floor(ticks.expected * 0.5));
      expect(ticks.maxGapMs, 'longest gap between two ticks of a 100 ms timer').toBeLessThan(1_000);
      expect(took).toBeLessThan(1_000 + closeSlackMs(ctx));
      const after = calls;
      await pause(ctx.timing.quietMs);
      expect(calls, 'handler calls after close() resolved').toBe(after);
    },
  },
  {
    id: 'handler-hangs-past-close-deadline',
    title: 'a handler that hangs past the close deadline: close() returns near its deadline, the signal is aborted, the message is redelivered',
    async run(ctx) {
      const topic = await ctx.topic();
      const group = ctx.group();
      const first = await ctx.client();
      const signals: AbortSignal[] = [];
      const sub = await ctx.subscribe(first, topic, {
        group,
        handler: (d) => {
          signals.push(d.signal);
          return new Promise<void>(() => {}); // hangs for good, ignoring the signal
        },
      });
      const receipt = await (await ctx.client()).publish(topic, { n: 1 });
      await eventually('the first delivery', ctx.timing.deliveryMs, () => signals.length >= 1);
      const took = await timedClose(sub, 500);
      expect(took).toBeGreaterThanOrEqual(450);
      expect(took).toBeLessThan(500 + closeSlackMs(ctx));
      expect(signals[0]!.aborted, 'the abandoned delivery sees its signal aborted').toBe(true);
      const got = await ctx.recorder(await ctx.client(), topic, { group });
      await got.waitFor('the redelivery', ctx.timing.redeliveryMs + ctx.timing.deliveryMs);
      expect(got.deliveries[0]!.id).toBe(receipt.id);
      expect(got.deliveries[0]!.attempt).toBeGreaterThanOrEqual(2);
    },
  },
  {
    id: 'empty-payload',
    title: 'an empty (0-byte) payload carried only with headers is delivered with a 0-byte body',
    async run(ctx) {
      const { bytes, headers } = await roundTripBytes(ctx, new Uint8Array(0), { event: 'user.deleted', 'user-id': 'u-42' });
      expect(bytes.byteLength).toBe(0);
      expect(headers.event).toBe('user.deleted');
      expect(headers['user-id']).toBe('u-42');
    },
  },
  {
    id: 'binary-every-byte-value',
    title: 'a binary payload holding all 256 byte values (ascending, descending, NULs, invalid UTF-8) round-trips',
    async run(ctx) {
      const body = new Uint8Array(1024 + 8);
      for (let i = 0; i < 512; i += 1) body[i] = i % 256;
      for (let i = 0; i < 512; i += 1) body[512 + i] = 255 - (i % 256);
      body.set([0xc3, 0x28, 0xed, 0xa0, 0x80, 0xff, 0x00, 0x00], 1024);
      sameBytes((await roundTripBytes(ctx, body)).bytes, body);
    },
  },
  {
    id: 'unicode-text',
    title: 'Unicode text (astral emoji, combining marks, RTL, NUL, BOM) round-trips through textCodec',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const got = await ctx.recorder<string>(client, topic, { codec: textCodec });
      const text = '\uFEFFhéllo ✓ 𝄞 👩‍👩‍👧 e\u0301 مرحبا \u0000 中文 \u2028 end';
      await client.publish(topic, text, { codec: textCodec });
      await got.waitFor('the delivery', ctx.timing.deliveryMs);
      expect(got.deliveries[0]!.payload).toBe(text);
    },
  },
  {
    id: 'payload-near-size-limit',
    title: 'a payload 1 KiB under the adapter maxMessageBytes (room left for headers) round-trips byte for byte',
    async run(ctx) {
      const body = noise(ctx.harness.capabilities.maxMessageBytes - 1024);
      sameBytes((await roundTripBytes(ctx, body)).bytes, body);
    },
  },
  {
    id: 'max-attempts-one',
    title: 'retry.maxAttempts 1: a throwing handler is dead-lettered after exactly one delivery',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const attempts = await ctx.recordAttempts(client, topic, { ...fastRetry, maxAttempts: 1 }, () => 'no retry for you');
      const dead = await ctx.deadLetters(client, topic);
      const receipt = await client.publish(topic, { n: 1 });
      await dead.waitFor('the dead letter', ctx.timing.deliveryMs * 2);
      await pause(ctx.timing.quietMs);
      expect(attempts).toEqual([1]);
      expect(dead.ids()).toEqual([receipt.id]);
      expect(dead.deliveries[0]!.headers[HEADERS.deadLetterAttempts]).toBe('1');
    },
  },
  {
    id: 'max-attempts-unlimited',
    title: 'retry.maxAttempts Infinity is accepted: a handler failing 7 times is acked on attempt 8, never dead-lettered (no silent cap)',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const attempts = await ctx.recordAttempts(
        client,
        topic,
        { initialDelayMs: 10, maxDelayMs: 50, multiplier: 2, jitter: false, maxAttempts: Number.POSITIVE_INFINITY },
        (n) => (n <= 7 ? `failure ${n}` : undefined),
      );
      const dead = await ctx.deadLetters(client, topic);
      await client.publish(topic, { n: 1 });
      await eventually('eight attempts', ctx.timing.deliveryMs + 8 * ctx.timing.redeliveryMs, () => attempts.length >= 8);
      await pause(ctx.timing.quietMs * 2);
      expect(attempts).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(dead.deliveries).toHaveLength(0);
    },
  },
  {
    id: 'idempotent-nack-then-redelivery',
    title: 'idempotent(): a handler that nacks its first delivery sees the redelivery, and the effect happens exactly once',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const calls: number[] = [];
      let effects = 0;
      await ctx.subscribe(client, topic, {
        group: ctx.group(),
        retry: { ...fastRetry, maxAttempts: 5 },
        middleware: [idempotent(new MemoryDedupStore())],
        handler: async (d) => {
          calls.push(d.attempt);
          if (calls.length === 1) {
            await d.nack(); // not ready yet
            return;
          }
          effects += 1;
        },
      });
      await client.publish(topic, { n: 1 });
      await eventually('the effect on the redelivery', ctx.timing.deliveryMs + ctx.timing.redeliveryMs * 2, () => effects >= 1);
      await pause(ctx.timing.quietMs);
      expect(calls).toEqual([1, 2]);
      expect(effects).toBe(1);
    },
  },
  {
    id: 'idempotent-concurrent-duplicate',
    title: 'idempotent(), maxAttempts 1: a copy of an id delivered while the first is still being handled waits for it; one effect, nothing dead-lettered',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const dead = await ctx.deadLetters(client, topic);
      let effects = 0;
      let handled = 0;
      await ctx.subscribe(client, topic, {
        group: ctx.group(),
        concurrency: 4,
        retry: { ...fastRetry, maxAttempts: 1 },
        middleware: [
          async (_d, next) => {
            try {
              await next();
            } finally {
              handled += 1;
            }
          },
          idempotent(new MemoryDedupStore()),
        ],
        handler: async () => {
          await pause(1_500); // slow: the second copy arrives while this one runs
          effects += 1;
        },
      });
      const id = `dup-${ctx.group()}`;
      await Promise.all([client.publish(topic, { n: 1 }, { id }), client.publish(topic, { n: 1 }, { id })]);
      await eventually('both copies settled', ctx.timing.deliveryMs + 5_000, () => handled >= 2);
      await pause(ctx.timing.quietMs);
      expect(effects).toBe(1);
      expect(dead.deliveries).toHaveLength(0);
    },
  },
  {
    id: 'subscribe-option-validation',
    title: 'subscribe rejects a misspelt option, prefetch -100 or NaN and a non-numeric backoff with CONFIG naming the field',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      await configRejection(ctx, client, topic, { concurrancy: 4 }, 'concurrancy');
      await configRejection(ctx, client, topic, { prefetch: -100 }, 'prefetch');
      await configRejection(ctx, client, topic, { prefetch: Number.NaN }, 'prefetch');
      await configRejection(ctx, client, topic, { retry: { initialDelayMs: 'x' } }, 'initialDelayMs');
    },
  },
];
