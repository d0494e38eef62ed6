import { context, propagation, ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { bytesCodec, HEADERS, idempotent, MemoryDedupStore, MqError, textCodec, type Capabilities } from '@mqkit/core';
import { expect } from 'vitest';
import { adversarialScenarios } from './adversarial-scenarios.ts';
import { expectMqError, rejection } from './assertions.ts';
import { eventually, pause, Recorder, type ScenarioContext } from './support.ts';

/** One conformance check. */
export interface Scenario {
  /** Stable id (used in skip maps). */
  readonly id: string;
  readonly title: string;
  /** Why this adapter cannot run it, from its capabilities; undefined when it can. */
  readonly unsupported?: (caps: Capabilities) => string | undefined;
  /** Uses `client.declare()` / `client.verify()`: skipped where the harness says the adapter has no topology step. */
  readonly needsTopology?: boolean;
  run(ctx: ScenarioContext): Promise<void>;
}

const noDelay = (caps: Capabilities): string | undefined => (caps.delay.kind === 'none' ? 'capabilities.delay.kind is none' : undefined);
const noOrdering = (caps: Capabilities): string | undefined => (caps.ordering !== 'key' ? "capabilities.ordering is not 'key'" : undefined);
const fastRetry = { initialDelayMs: 50, maxDelayMs: 200, multiplier: 2, jitter: false };

export const scenarios: Scenario[] = [
  {
    id: 'publish-delivers',
    title: 'publish resolves, then the message is delivered with its id, key, headers and payload',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const got = await ctx.recorder<{ order: number; note: string }>(client, topic);
      const payload = { order: 42, note: 'héllo ✓' };
      const receipt = await client.publish(topic, payload, { key: 'customer-7', headers: { tenant: 'acme' } });
      expect(receipt.id).toMatch(/.+/);
      expect(receipt.topic).toBe(topic);
      await got.waitFor('the delivery', ctx.timing.deliveryMs);
      const d = got.deliveries[0]!;
      expect(d.id).toBe(receipt.id);
      expect(d.topic).toBe(topic);
      expect(d.key).toBe('customer-7');
      expect(d.payload).toEqual(payload);
      expect(d.headers.tenant).toBe('acme');
      expect(d.headers[HEADERS.contentType]).toBe('application/json');
      expect(d.attempt).toBe(1);
      expect(Math.abs(d.timestamp - Date.now())).toBeLessThan(60_000);
    },
  },
  {
    id: 'publish-custom-id',
    title: 'a producer-made id is kept from publish to delivery',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const got = await ctx.recorder(client, topic);
      const receipt = await client.publish(topic, { n: 1 }, { id: 'order-1001-created' });
      expect(receipt.id).toBe('order-1001-created');
      await got.waitFor('the delivery', ctx.timing.deliveryMs);
      expect(got.deliveries[0]!.id).toBe('order-1001-created');
    },
  },
  {
    id: 'batch-outcomes',
    title: 'publishBatch reports each message; an invalid one fails alone and the rest are delivered',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const got = await ctx.recorder<{ n: number }>(client, topic);
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      const outcomes = await client.publishBatch([
        { topic, payload: { n: 0 } },
        { topic: '', payload: { n: 1 } },
        { topic, payload: { n: 2 } },
        { topic, payload: cyclic },
        { topic, payload: { n: 4 } },
      ]);
      expect(outcomes.map((o) => o.ok)).toEqual([true, false, true, false, true]);
      const bad = outcomes.filter((o) => !o.ok);
      for (const o of bad) if (!o.ok) expectMqError(o.error, 'INVALID_MESSAGE');
      await eventually('three deliveries', ctx.timing.deliveryMs, () => got.uniqueIds().size >= 3);
      await pause(ctx.timing.quietMs);
      expect(got.deliveries.map((d) => d.payload.n).sort()).toEqual([0, 2, 4]);
      const okIds = outcomes.filter((o) => o.ok).map((o) => o.id);
      expect([...got.uniqueIds()].sort()).toEqual(okIds.sort());
    },
  },
  {
    id: 'many-in-flight',
    title: '200 concurrent publishes all resolve and all are delivered',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const got = await ctx.recorder(client, topic, { concurrency: 16 });
      const receipts = await Promise.all(Array.from({ length: 200 }, (_, n) => client.publish(topic, { n })));
      const ids = new Set(receipts.map((r) => r.id));
      expect(ids.size).toBe(200);
      await eventually('200 deliveries', ctx.timing.deliveryMs * 2, () => got.uniqueIds().size >= 200);
      expect(got.uniqueIds()).toEqual(ids);
    },
  },
  {
    id: 'redelivery-after-consumer-dies',
    title: 'at-least-once: a message whose consumer dies before acking is redelivered to the next one',
    async run(ctx) {
      const topic = await ctx.topic();
      const group = ctx.group();
      const first = await ctx.client();
      let started = 0;
      await ctx.subscribe(first, topic, { group, handler: () => { started += 1; return new Promise<void>(() => {}); } });
      const receipt = await (await ctx.client()).publish(topic, { n: 1 });
      await eventually('the first delivery', ctx.timing.deliveryMs, () => started >= 1);
      await first.close({ timeoutMs: 0 }); // the consumer dies: the handler never finished
      const second = await ctx.client();
      const got = await ctx.recorder(second, topic, { group });
      await got.waitFor('the redelivery', ctx.timing.redeliveryMs + ctx.timing.deliveryMs);
      expect(got.deliveries[0]!.id).toBe(receipt.id);
      if (second.capabilities.deliveryCount === 'native') expect(got.deliveries[0]!.attempt).toBeGreaterThanOrEqual(2);
    },
  },
  {
    id: 'retry-then-succeed',
    title: 'a handler that throws is retried with a growing attempt count until it succeeds, then acked once',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const attempts = await ctx.recordAttempts(client, topic, { ...fastRetry, maxAttempts: 5 }, (n) => (n < 3 ? `transient failure ${n}` : undefined));
      await client.publish(topic, { n: 1 });
      await eventually('three attempts', ctx.timing.deliveryMs + 2 * ctx.timing.redeliveryMs, () => attempts.length >= 3);
      await pause(ctx.timing.quietMs * 2);
      expect(attempts).toEqual([1, 2, 3]);
    },
  },
  {
    id: 'dead-letter-after-max-attempts',
    title: 'a handler that always fails is dead-lettered after maxAttempts, with reason, error and original headers',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      let calls = 0;
      await ctx.subscribe(client, topic, {
        group: ctx.group(),
        retry: { ...fastRetry, maxAttempts: 3 },
        handler: () => {
          calls += 1;
          throw new Error('payment service said no');
        },
      });
      const dead = await ctx.deadLetters<{ n: number }>(client, topic);
      const receipt = await client.publish(topic, { n: 7 }, { headers: { tenant: 'acme' }, key: 'k1' });
      await dead.waitFor('the dead letter', ctx.timing.deliveryMs + 3 * ctx.timing.redeliveryMs);
      await pause(ctx.timing.quietMs);
      expect(calls).toBe(3);
      const d = dead.deliveries[0]!;
      expect(d.id).toBe(receipt.id);
      expect(d.payload).toEqual({ n: 7 });
      expect(d.key).toBe('k1');
      expect(d.headers.tenant).toBe('acme');
      expect(d.headers[HEADERS.deadLetterReason]).toBe('handler-failed');
      expect(d.headers[HEADERS.deadLetterError]).toContain('payment service said no');
      expect(d.headers[HEADERS.deadLetterAttempts]).toBe('3');
      expect(d.headers[HEADERS.originalTopic]).toBe(topic);
    },
  },
  {
    id: 'explicit-dead-letter',
    title: 'deadLetter(reason) moves the message to the dead-letter topic at once',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      let calls = 0;
      await ctx.subscribe(client, topic, {
        group: ctx.group(),
        handler: async (d) => {
          calls += 1;
          await d.deadLetter('order-is-invalid');
        },
      });
      const dead = await ctx.deadLetters(client, topic);
      const receipt = await client.publish(topic, { n: 1 });
      await dead.waitFor('the dead letter', ctx.timing.deliveryMs * 2);
      await pause(ctx.timing.quietMs);
      expect(calls).toBe(1);
      expect(dead.deliveries[0]!.id).toBe(receipt.id);
      expect(dead.deliveries[0]!.headers[HEADERS.deadLetterReason]).toBe('order-is-invalid');
    },
  },
  {
    id: 'nack-with-delay',
    title: 'nack({ delayMs }) redelivers the message, not before the delay',
    unsupported: noDelay,
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const got = new Recorder();
      const delayMs = ctx.timing.delayMs;
      await ctx.subscribe(client, topic, {
        group: ctx.group(),
        handler: async (d) => {
          got.record(d);
          if (d.attempt === 1) await d.nack({ delayMs });
        },
      });
      await client.publish(topic, { n: 1 });
      await got.waitFor('the redelivery', ctx.timing.deliveryMs + delayMs + ctx.timing.redeliveryMs, 2);
      const gap = got.receivedAt[1]! - got.receivedAt[0]!;
      expect(gap).toBeGreaterThanOrEqual(delayMs - 50);
      expect(got.deliveries[1]!.attempt).toBe(2);
      await pause(ctx.timing.quietMs);
      expect(got.deliveries).toHaveLength(2);
    },
  },
  {
    id: 'nack-immediate',
    title: 'nack() without a delay redelivers the message',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const got = new Recorder();
      await ctx.subscribe(client, topic, {
        group: ctx.group(),
        handler: async (d) => {
          got.record(d);
          if (d.attempt === 1) await d.nack();
        },
      });
      await client.publish(topic, { n: 1 });
      await got.waitFor('the redelivery', ctx.timing.deliveryMs + ctx.timing.redeliveryMs, 2);
      expect(got.deliveries[1]!.id).toBe(got.deliveries[0]!.id);
    },
  },
  {
    id: 'manual-ack',
    title: 'ack() inside the handler settles once; a second settle is refused and nothing is redelivered',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const got = new Recorder();
      let secondSettle: unknown;
      await ctx.subscribe(client, topic, {
        group: ctx.group(),
        handler: async (d) => {
          got.record(d);
          await d.ack();
          expect(d.settled).toBe(true);
          secondSettle = await rejection(d.nack());
        },
      });
      await client.publish(topic, { n: 1 });
      await eventually('the delivery', ctx.timing.deliveryMs, () => got.deliveries.length >= 1 && secondSettle !== undefined);
      expect(secondSettle).toBeInstanceOf(MqError);
      await pause(ctx.timing.quietMs * 2);
      expect(got.deliveries).toHaveLength(1);
    },
  },
  {
    id: 'fan-out-across-groups',
    title: 'every consumer group gets its own copy of each message',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const a = new Recorder();
      const b = new Recorder();
      await ctx.subscribe(client, topic, { group: ctx.group(), handler: (d) => a.record(d) });
      await ctx.subscribe(client, topic, { group: ctx.group(), handler: (d) => b.record(d) });
      const receipts = await Promise.all(Array.from({ length: 10 }, (_, n) => client.publish(topic, { n })));
      const ids = new Set(receipts.map((r) => r.id));
      await eventually('both groups', ctx.timing.deliveryMs, () => a.uniqueIds().size >= 10 && b.uniqueIds().size >= 10);
      expect(a.uniqueIds()).toEqual(ids);
      expect(b.uniqueIds()).toEqual(ids);
    },
  },
  {
    id: 'competing-consumers',
    title: 'consumers in one group share the messages: each handled by one of them',
    async run(ctx) {
      const topic = await ctx.topic();
      const group = ctx.group();
      const a = new Recorder();
      const b = new Recorder();
      await ctx.subscribe(await ctx.client(), topic, { group, concurrency: 2, handler: async (d) => { a.record(d); await pause(20); } });
      await ctx.subscribe(await ctx.client(), topic, { group, concurrency: 2, handler: async (d) => { b.record(d); await pause(20); } });
      await pause(ctx.timing.quietMs); // let the group settle its members
      const publisher = await ctx.client();
      const receipts = await Promise.all(Array.from({ length: 60 }, (_, n) => publisher.publish(topic, { n }, { key: `k${n}` })));
      const ids = new Set(receipts.map((r) => r.id));
      await eventually('all 60 handled', ctx.timing.deliveryMs * 2, () => new Set([...a.ids(), ...b.ids()]).size >= 60);
      expect(new Set([...a.ids(), ...b.ids()])).toEqual(ids);
      expect(a.deliveries.length).toBeGreaterThan(0);
      expect(b.deliveries.length).toBeGreaterThan(0);
      const both = [...a.uniqueIds()].filter((id) => b.uniqueIds().has(id));
      expect(both).toEqual([]);
    },
  },
  {
    id: 'key-ordering',
    title: 'ordered: messages of one key are handled one at a time in publish order, under concurrency',
    unsupported: noOrdering,
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic({ ordered: true });
      const seen = new Map<string, number[]>();
      const active = new Set<string>();
      let overlap = false;
      let total = 0;
      await ctx.subscribe<{ key: string; seq: number }>(client, topic, {
        group: ctx.group(),
        ordered: true,
        concurrency: 8,
        handler: async (d) => {
          if (active.has(d.payload.key)) overlap = true;
          active.add(d.payload.key);
          await pause(Math.floor(Math.random() * 5));
          seen.set(d.payload.key, [...(seen.get(d.payload.key) ?? []), d.payload.seq]);
          active.delete(d.payload.key);
          total += 1;
        },
      });
      const keys = ['k0', 'k1', 'k2', 'k3', 'k4'];
      await Promise.all(
        keys.map(async (key) => {
          for (let seq = 0; seq < 20; seq += 1) await client.publish(topic, { key, seq }, { key });
        }),
      );
      await eventually('100 deliveries', ctx.timing.deliveryMs * 2, () => total >= 100);
      expect(overlap).toBe(false);
      for (const key of keys) expect(seen.get(key)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    },
  },
  {
    id: 'key-ordering-publish-waves',
    title: 'ordered: keyed publishes fired in waves without waiting (several batches of a key in flight) keep publish order',
    unsupported: noOrdering,
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic({ ordered: true });
      const seen = new Map<string, number[]>();
      let total = 0;
      await ctx.subscribe<{ key: string; seq: number }>(client, topic, {
        group: ctx.group(),
        ordered: true,
        concurrency: 8,
        handler: (d) => {
          seen.set(d.payload.key, [...(seen.get(d.payload.key) ?? []), d.payload.seq]);
          total += 1;
        },
      });
      const keys = ['k0', 'k1', 'k2', 'k3'];
      const next = new Map(keys.map((k) => [k, 0]));
      const published: Array<Promise<unknown>> = [];
      for (let wave = 0; wave < 5; wave += 1) {
        for (let i = 0; i < 40; i += 1) {
          const key = keys[i % keys.length]!;
          const seq = next.get(key)!;
          next.set(key, seq + 1);
          published.push(client.publish(topic, { key, seq }, { key }));
        }
        // Each wave is flushed on its own while the earlier ones are still in flight.
        await new Promise((r) => setImmediate(r));
      }
      await Promise.all(published);
      await eventually('200 deliveries', ctx.timing.deliveryMs * 2, () => total >= 200);
      for (const key of keys) expect(seen.get(key)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    },
  },
  {
    id: 'key-ordering-with-retry',
    title: 'ordered: a retried message is handled before the later messages of its key',
    unsupported: noOrdering,
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic({ ordered: true });
      const order: number[] = [];
      await ctx.subscribe<{ seq: number }>(client, topic, {
        group: ctx.group(),
        ordered: true,
        concurrency: 4,
        retry: { ...fastRetry, maxAttempts: 5 },
        handler: (d) => {
          if (d.payload.seq === 0 && d.attempt === 1) throw new Error('first attempt fails');
          order.push(d.payload.seq);
        },
      });
      for (let seq = 0; seq < 5; seq += 1) await client.publish(topic, { seq }, { key: 'same-key' });
      await eventually('five handled', ctx.timing.deliveryMs + ctx.timing.redeliveryMs * 2, () => order.length >= 5);
      expect(order).toEqual([0, 1, 2, 3, 4]);
    },
  },
  {
    id: 'headers-round-trip',
    title: 'application headers round-trip exactly, Unicode included',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const got = await ctx.recorder(client, topic);
      const room = Math.min(6, client.capabilities.maxHeaders - 3);
      const headers: Record<string, string> = {};
      for (let i = 0; i < room; i += 1) headers[`h-${i}`] = `välue ${i} ✓ ${'x'.repeat(i * 10)}`;
      headers['empty'] = '';
      await client.publish(topic, { n: 1 }, { headers });
      await got.waitFor('the delivery', ctx.timing.deliveryMs);
      for (const [name, value] of Object.entries(headers)) expect(got.deliveries[0]!.headers[name]).toBe(value);
    },
  },
  {
    id: 'trace-context',
    title: 'W3C trace context is injected on publish and continued in the handler',
    async run(ctx) {
      // Registered only if the process has none yet, and only those undone afterwards.
      const ownsContext = context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
      const ownsPropagator = propagation.setGlobalPropagator(new W3CTraceContextPropagator());
      try {
        const { client, topic } = await ctx.clientAndTopic();
        let inHandler: string | undefined;
        const got = new Recorder();
        await ctx.subscribe(client, topic, {
          group: ctx.group(),
          handler: (d) => {
            inHandler = trace.getSpanContext(context.active())?.traceId;
            got.record(d);
          },
        });
        const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
        const parent = trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED, isRemote: true });
        await context.with(parent, () => client.publish(topic, { n: 1 }));
        await got.waitFor('the delivery', ctx.timing.deliveryMs);
        expect(got.deliveries[0]!.headers.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
        expect(inHandler).toBe(traceId);
      } finally {
        if (ownsPropagator) propagation.disable();
        if (ownsContext) context.disable();
      }
    },
  },
  {
    id: 'delay-on-publish',
    title: 'a message published with delayMs is not delivered before the delay',
    unsupported: noDelay,
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic({ delayed: true });
      const got = await ctx.recorder(client, topic);
      const delayMs = ctx.timing.delayMs;
      const sentAt = Date.now();
      await client.publish(topic, { n: 1 }, { delayMs });
      await got.waitFor('the delayed delivery', ctx.timing.deliveryMs + delayMs);
      expect(got.receivedAt[0]! - sentAt).toBeGreaterThanOrEqual(delayMs - 50);
    },
  },
  {
    id: 'delay-beyond-limit',
    title: 'a delay beyond the adapter maximum is refused with UNSUPPORTED before sending',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const { delay } = client.capabilities;
      const tooLong = delay.kind === 'none' ? 1000 : delay.maxMs + 1000;
      expectMqError(await rejection(client.publish(topic, { n: 1 }, { delayMs: tooLong })), 'UNSUPPORTED');
    },
  },
  {
    id: 'idempotent-consume',
    title: 'idempotent(): a duplicate of an already processed message id has no second effect',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const effects = new Map<string, number>();
      const got = new Recorder();
      await ctx.subscribe(client, topic, {
        group: ctx.group(),
        middleware: [(d, next) => { got.record(d); return next(); }, idempotent(new MemoryDedupStore())],
        handler: (d) => {
          effects.set(d.id, (effects.get(d.id) ?? 0) + 1);
        },
      });
      await client.publish(topic, { n: 1 }, { id: 'dup-1' });
      await eventually('the first effect', ctx.timing.deliveryMs, () => effects.get('dup-1') === 1);
      await client.publish(topic, { n: 1 }, { id: 'dup-1' });
      await client.publish(topic, { n: 2 }, { id: 'other-2' });
      await eventually('the other message', ctx.timing.deliveryMs, () => effects.get('other-2') === 1);
      await pause(ctx.timing.quietMs);
      expect(effects.get('dup-1')).toBe(1);
    },
  },
  {
    id: 'idempotent-retry-after-failure',
    title: 'idempotent(): a failed attempt releases its lease so the retry runs',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      let calls = 0;
      let effects = 0;
      await ctx.subscribe(client, topic, {
        group: ctx.group(),
        retry: { ...fastRetry, maxAttempts: 3 },
        middleware: [idempotent(new MemoryDedupStore())],
        handler: () => {
          calls += 1;
          if (calls === 1) throw new Error('first attempt fails');
          effects += 1;
        },
      });
      await client.publish(topic, { n: 1 });
      await eventually('the retried effect', ctx.timing.deliveryMs + ctx.timing.redeliveryMs * 2, () => effects === 1);
      await pause(ctx.timing.quietMs);
      expect(calls).toBe(2);
      expect(effects).toBe(1);
    },
  },
  {
    id: 'close-drains-in-flight',
    title: 'close() waits for running handlers, acks their messages, and they are not redelivered',
    async run(ctx) {
      const topic = await ctx.topic();
      const group = ctx.group();
      const client = await ctx.client();
      let started = false;
      let finished = false;
      await ctx.subscribe(client, topic, {
        group,
        handler: async () => {
          started = true;
          await pause(300);
          finished = true;
        },
      });
      await client.publish(topic, { n: 1 });
      await eventually('the handler to start', ctx.timing.deliveryMs, () => started);
      await client.close();
      expect(finished).toBe(true);
      const again = await ctx.client();
      const got = await ctx.recorder(again, topic, { group });
      await pause(Math.max(ctx.timing.quietMs * 2, ctx.timing.redeliveryMs / 2));
      expect(got.deliveries).toHaveLength(0);
    },
  },
  {
    id: 'closed-client',
    title: 'close() is safe twice; publish and subscribe after close reject with CLOSED',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      await Promise.all([client.close(), client.close()]);
      await client.close();
      expectMqError(await rejection(client.publish(topic, { n: 1 })), 'CLOSED');
      expectMqError(await rejection(client.subscribe(topic, { group: 'g', handler: () => {} })), 'CLOSED');
    },
  },
  {
    id: 'invalid-payload',
    title: 'an unserialisable payload rejects with INVALID_MESSAGE and nothing else is lost',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const got = await ctx.recorder(client, topic);
      expectMqError(await rejection(client.publish(topic, { big: 10n })), 'INVALID_MESSAGE');
      expectMqError(await rejection(client.publish(topic, undefined)), 'INVALID_MESSAGE');
      const ok = await client.publish(topic, { fine: true });
      await got.waitFor('the valid message', ctx.timing.deliveryMs);
      await pause(ctx.timing.quietMs);
      expect(got.ids()).toEqual([ok.id]);
    },
  },
  {
    id: 'too-large',
    title: 'a payload over the adapter maximum rejects with TOO_LARGE before sending',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const got = await ctx.recorder(client, topic);
      const size = client.capabilities.maxMessageBytes + 1;
      const err = await rejection(client.publish(topic, new Uint8Array(size), { codec: bytesCodec }));
      expectMqError(err, 'TOO_LARGE');
      expect((err as MqError).retryable).toBe(false);
      const ok = await client.publish(topic, { small: true });
      await got.waitFor('the valid message', ctx.timing.deliveryMs);
      expect(got.ids()).toEqual([ok.id]);
    },
  },
  {
    id: 'invalid-topic-and-headers',
    title: 'an empty topic or a reserved x-mqkit- header rejects with INVALID_MESSAGE',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      expectMqError(await rejection(client.publish('', { n: 1 })), 'INVALID_MESSAGE');
      expectMqError(await rejection(client.subscribe('', { group: 'g', handler: () => {} })), 'INVALID_MESSAGE');
      expectMqError(await rejection(client.publish(topic, { n: 1 }, { headers: { 'x-mqkit-attempts': '9' } })), 'INVALID_MESSAGE');
      expectMqError(await rejection(client.publish(topic, { n: 1 }, { headers: { bad: 5 as unknown as string } })), 'INVALID_MESSAGE');
    },
  },
  {
    id: 'concurrency-limit',
    title: 'no more handlers run at once than `concurrency`, and they do run in parallel',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      let running = 0;
      let peak = 0;
      let done = 0;
      await ctx.subscribe(client, topic, {
        group: ctx.group(),
        concurrency: 3,
        handler: async () => {
          running += 1;
          peak = Math.max(peak, running);
          await pause(60);
          running -= 1;
          done += 1;
        },
      });
      await Promise.all(Array.from({ length: 20 }, (_, n) => client.publish(topic, { n })));
      await eventually('20 handled', ctx.timing.deliveryMs * 2, () => done >= 20);
      expect(peak).toBeLessThanOrEqual(3);
      expect(peak).toBeGreaterThanOrEqual(2);
    },
  },
  {
    id: 'binary-payload',
    title: 'binary payloads round-trip byte for byte with bytesCodec',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const got = await ctx.recorder<Uint8Array>(client, topic, { codec: bytesCodec });
      const bytes = new Uint8Array(4096);
      for (let i = 0; i < bytes.length; i += 1) bytes[i] = (i * 31 + 7) % 256;
      bytes[0] = 0;
      await client.publish(topic, bytes, { codec: bytesCodec });
      await got.waitFor('the delivery', ctx.timing.deliveryMs);
      expect(Buffer.from(got.deliveries[0]!.payload).equals(Buffer.from(bytes))).toBe(true);
      expect(got.deliveries[0]!.headers[HEADERS.contentType]).toBe('application/octet-stream');
    },
  },
  {
    id: 'decode-failure-dead-letters',
    title: 'a payload the subscriber cannot decode is dead-lettered with reason decode-failed, not retried',
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      let calls = 0;
      await ctx.subscribe(client, topic, { group: ctx.group(), handler: () => { calls += 1; } });
      const dead = await ctx.deadLetters<string>(client, topic, { codec: textCodec });
      await client.publish(topic, 'this is { not json', { codec: textCodec });
      await dead.waitFor('the dead letter', ctx.timing.deliveryMs * 2);
      expect(calls).toBe(0);
      expect(dead.deliveries[0]!.payload).toBe('this is { not json');
      expect(dead.deliveries[0]!.headers[HEADERS.deadLetterReason]).toBe('decode-failed');
    },
  },
  {
    id: 'transaction-commit-and-abort',
    title: 'transaction(): messages of a committed transaction are delivered, those of a failed one never',
    unsupported: (caps) => (caps.transactions ? undefined : 'capabilities.transactions is false'),
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic({ transactional: true });
      const got = await ctx.recorder<{ n: string }>(client, topic);
      await client.transaction(async (tx) => {
        await tx.publish(topic, { n: 'committed' });
      });
      const err = await rejection(
        client.transaction(async (tx) => {
          await tx.publish(topic, { n: 'aborted' });
          throw new Error('local transaction failed');
        }),
      );
      expect((err as Error).message).toBe('local transaction failed');
      await got.waitFor('the committed message', ctx.timing.deliveryMs);
      await pause(ctx.timing.quietMs * 2);
      expect(got.deliveries.map((d) => d.payload.n)).toEqual(['committed']);
    },
  },
  {
    id: 'transaction-unsupported',
    title: 'transaction() rejects with UNSUPPORTED where the adapter has no native transactions',
    unsupported: (caps) => (caps.transactions ? 'capabilities.transactions is true (tested by transaction-commit-and-abort)' : undefined),
    async run(ctx) {
      const client = await ctx.client();
      expectMqError(await rejection(client.transaction(async () => {})), 'UNSUPPORTED');
    },
  },
  {
    id: 'capabilities-match',
    title: 'the client reports the capabilities the harness declares',
    async run(ctx) {
      const client = await ctx.client();
      expect(client.capabilities).toEqual(ctx.harness.capabilities);
    },
  },
  {
    id: 'native-escape-hatch',
    title: 'the native client is reachable',
    async run(ctx) {
      const client = await ctx.client();
      expect(client.native).toBeDefined();
      expect(client.native).not.toBeNull();
    },
  },
  // Hostile handlers, odd payloads, extreme retry policies, mistyped options.
  {
    id: 'declared-group-keeps-early-messages',
    title: 'a group declared before anything is published receives what was published before its first subscriber',
    needsTopology: true,
    async run(ctx) {
      const { client, topic } = await ctx.clientAndTopic();
      const group = ctx.group();
      await client.declare({ topic, groups: [group] });
      await client.verify({ topic, groups: [group] }); // declared means verified
      const receipts = await Promise.all([1, 2, 3].map((n) => client.publish(topic, { n })));
      await pause(ctx.timing.quietMs); // the group has no subscriber yet: nothing may get lost meanwhile
      const got = await ctx.recorder<{ n: number }>(await ctx.client(), topic, { group });
      await eventually('the three messages published before the first subscriber', ctx.timing.deliveryMs, () => got.uniqueIds().size >= 3);
      expect([...got.uniqueIds()].sort()).toEqual(receipts.map((r) => r.id).sort());
      await client.declare({ topic, groups: [group] }); // idempotent, also with a subscriber
    },
  },
  ...adversarialScenarios,
];

