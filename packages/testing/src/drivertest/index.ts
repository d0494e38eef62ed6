/**
 * `@mqkit/testing/drivertest`: the conformance entry point for an adapter author who has a
 * driver and nothing else (in the spirit of go-cloud's `drivertest`). It checks the pull
 * contract ({@link DriverReceiver}) directly, then runs the whole conformance suite and the
 * model-based sweep through core over that driver alone.
 *
 * ```ts
 * // my-broker.drivertest.test.ts
 * runDriverConformance({ name: 'my-broker', capabilities: MY_CAPABILITIES, create: () => MyDriver.connect(url) });
 * ```
 */
import { connect } from '@mqkit/core';
import type { Adapter, Capabilities, Driver, DriverReceiver, Envelope, ReceivedMessage, SettleResults, SubscriptionSpec } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TIMING, uniqueName, type ConformanceHarness, type ConformanceTiming, type TopicNeeds } from '../conformance/harness.ts';
import { runConformance } from '../conformance/index.ts';
import type { ModelOptions } from '../conformance/model.ts';

/** How the driver suite reaches a driver. */
export interface DriverHarness {
  readonly name: string;
  /** What the driver claims (must equal `driver.capabilities`). */
  readonly capabilities: Capabilities;
  /** A new driver: a new connection to the broker under test. */
  create(): Promise<Driver>;
  /** A fresh topic (and its `-dlq`), created as the broker needs. @default a random name */
  topic?(needs: TopicNeeds): Promise<string>;
  readonly timing?: Partial<ConformanceTiming>;
  /** Scenario ids of the full suite to skip, with the reason. */
  readonly skip?: Readonly<Record<string, string>>;
  /** The driver implements `Driver.topology`. @default true */
  readonly topology?: boolean;
  /** Adapter options of every subscription (e.g. a short lease). */

  readonly subscribeOptions?: Readonly<Record<string, unknown>>;
}

/** Options of {@link runDriverConformance}. */
export interface DriverConformanceOptions {
  /** Run the model-based sweep with these options. @default { runs: 6 } */
  readonly model?: ModelOptions | false;
  /** Run the full scenario suite through core. @default true */
  readonly scenarios?: boolean;
}

/** Registers the driver-level checks, then the conformance suite over the driver alone. */
export function runDriverConformance(harness: DriverHarness, options: DriverConformanceOptions = {}): void {
  const timing = { ...DEFAULT_TIMING, ...harness.timing };
  describe(`mqkit driver contract: ${harness.name}`, () => {
    for (const check of receiverChecks) {
      it(`[${check.id}] ${check.title}`, async () => {
        const driver = await harness.create();
        try {
          expect(driver.capabilities).toEqual(harness.capabilities);
          expect(driver.receiver, 'the driver implements receiver() (the pull contract)').toBeTypeOf('function');
          const topic = (await harness.topic?.({})) ?? uniqueName('drv');
          await check.run({ driver, topic, timing, spec: (group) => spec(harness, topic, group) });
        } finally {
          await driver.close();
        }
      }, timing.testMs);
    }
  });
  if (options.scenarios === false) return;
  const adapter: Adapter = { schemes: ['drivertest'], create: () => harness.create() };
  const suite: ConformanceHarness = {
    name: `${harness.name} (driver alone)`,
    capabilities: harness.capabilities,
    connect: () => connect('drivertest://driver', { adapters: [adapter] }),
    ...(harness.topic ? { topic: (needs: TopicNeeds) => harness.topic!(needs) } : {}),
    ...(harness.timing ? { timing: harness.timing } : {}),
    ...(harness.skip ? { skip: harness.skip } : {}),
    ...(harness.topology === false ? { topology: false } : {}),
    ...(harness.subscribeOptions ? { subscribeOptions: harness.subscribeOptions } : {}),
  };
  runConformance(suite, options.model === false ? {} : { model: options.model ?? { runs: 6 } });
}

function spec(harness: DriverHarness, topic: string, group: string): SubscriptionSpec {
  return { topic, group, maxInFlight: 16, ordered: false, maxAttempts: 5, deadLetterTopic: `${topic}-dlq`, options: harness.subscribeOptions ?? {} };
}

interface CheckContext {
  readonly driver: Driver;
  readonly topic: string;
  readonly timing: ConformanceTiming;
  spec(group: string): SubscriptionSpec;
}

interface ReceiverCheck {
  readonly id: string;
  readonly title: string;
  run(ctx: CheckContext): Promise<void>;
}

function envelope(topic: string, id: string, body: Uint8Array, extra: Partial<Envelope> = {}): Envelope {
  return { id, topic, headers: { 'content-type': 'application/octet-stream' }, body, timestamp: Date.now(), ...extra };
}

async function sendAll(driver: Driver, envelopes: readonly Envelope[]): Promise<void> {
  const outcomes = await driver.send(envelopes);
  expect(outcomes).toHaveLength(envelopes.length);
  for (const outcome of outcomes) expect(outcome.ok, outcome.ok ? '' : outcome.error.message).toBe(true);
}

/** Receives until `n` messages arrived (each call asks for at most `max`), or fails after `ms`. */
async function receiveN<M extends ReceivedMessage>(receiver: DriverReceiver<M>, n: number, ms: number, max = receiver.batchSize): Promise<M[]> {
  const got: M[] = [];
  const end = Date.now() + ms;
  while (got.length < n) {
    const left = end - Date.now();
    if (left <= 0) throw new Error(`received ${got.length} of ${n} messages within ${ms} ms`);
    const batch = await receiver.receive(max, AbortSignal.timeout(Math.ceil(left)));
    expect(batch.length, 'receive(max) returns at most max messages').toBeLessThanOrEqual(max);
    got.push(...batch);
  }
  return got;
}

/** Watches for `ms` that nothing arrives. */
async function expectNothing(receiver: DriverReceiver, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const batch = await receiver.receive(receiver.batchSize, AbortSignal.timeout(Math.max(1, Math.ceil(end - Date.now()))));
    expect(
      batch.map((m) => m.id),
      'nothing more arrives',
    ).toEqual([]);
  }
}

function expectSettled(results: SettleResults, n: number): void {
  if (results === undefined) return;
  expect(results).toHaveLength(n);
  for (const r of results) expect(r).toBeUndefined();
}

const receiverChecks: readonly ReceiverCheck[] = [
  {
    id: 'round-trip',
    title: 'a sent message is received whole (0-byte, binary, key and headers), first delivery, and an ack removes it',
    async run({ driver, topic, timing, spec }) {
      const receiver = await driver.receiver(spec(uniqueName('g')));
      try {
        const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
        const sent = [
          envelope(topic, uniqueName('empty'), new Uint8Array()),
          envelope(topic, uniqueName('binary'), binary),
          envelope(topic, uniqueName('keyed'), new TextEncoder().encode('{"n":1}'), { key: 'k-1', headers: { 'content-type': 'application/json', 'x-app': 'v', 'x-unicode': 'é✓' } }),
        ];
        await sendAll(driver, sent);
        const got = await receiveN(receiver, sent.length, timing.deliveryMs);
        expect(new Set(got.map((m) => m.id)).size, 'ids are distinct').toBe(sent.length);
        for (const want of sent) {
          const m = got.find((g) => g.envelope.id === want.id);
          expect(m, `message ${want.id} received`).toBeDefined();
          expect(m!.deliveryCount).toBe(1);
          expect(m!.envelope.topic).toBe(topic);
          expect(m!.envelope.key).toBe(want.key);
          expect(Array.from(m!.envelope.body)).toEqual(Array.from(want.body));
          expect(m!.envelope.headers).toMatchObject(want.headers);
          expect(m!.envelope.timestamp).toBe(want.timestamp);
        }
        expectSettled(await receiver.ack(got), got.length);
        await expectNothing(receiver, timing.quietMs);
      } finally {
        await receiver.close();
      }
    },
  },
  {
    id: 'nack-redelivers',
    title: 'a nacked message comes back under the same id with deliveryCount + 1',
    async run({ driver, topic, timing, spec }) {
      const receiver = await driver.receiver(spec(uniqueName('g')));
      try {
        await sendAll(driver, [envelope(topic, uniqueName('m'), new Uint8Array([1]))]);
        const [first] = await receiveN(receiver, 1, timing.deliveryMs);
        expectSettled(await receiver.nack([first!], 0), 1);
        const [again] = await receiveN(receiver, 1, timing.redeliveryMs);
        expect(again!.id).toBe(first!.id);
        expect(again!.envelope.id).toBe(first!.envelope.id);
        expect(again!.deliveryCount).toBe(2);
        expectSettled(await receiver.ack([again!]), 1);
      } finally {
        await receiver.close();
      }
    },
  },
  {
    id: 'republished-id',
    title: 'one envelope id sent twice is two messages, under distinct ids, both delivered',
    async run({ driver, topic, timing, spec }) {
      const receiver = await driver.receiver(spec(uniqueName('g')));
      try {
        const id = uniqueName('twice');
        await sendAll(driver, [envelope(topic, id, new Uint8Array([1]))]);
        await sendAll(driver, [envelope(topic, id, new Uint8Array([2]))]);
        const got = await receiveN(receiver, 2, timing.deliveryMs);
        expect(got.map((m) => m.envelope.id)).toEqual([id, id]);
        expect(got[0]!.id, 'ReceivedMessage.id names the broker message, not the envelope').not.toBe(got[1]!.id);
        expectSettled(await receiver.ack(got), 2);
      } finally {
        await receiver.close();
      }
    },
  },
  {
    id: 'receive-max',
    title: 'receive(max) never returns more than max',
    async run({ driver, topic, timing, spec }) {
      const receiver = await driver.receiver(spec(uniqueName('g')));
      try {
        await sendAll(driver, Array.from({ length: 5 }, (_, i) => envelope(topic, uniqueName(`m${i}`), new Uint8Array([i]))));
        const got = await receiveN(receiver, 5, timing.deliveryMs, 2);
        expectSettled(await receiver.ack(got), got.length);
      } finally {
        await receiver.close();
      }
    },
  },
  {
    id: 'receive-abort',
    title: 'an idle receive resolves promptly when its signal aborts',
    async run({ driver, spec }) {
      const receiver = await driver.receiver(spec(uniqueName('g')));
      try {
        const controller = new AbortController();
        const started = Date.now();
        setTimeout(() => controller.abort(), 100);
        const got = await receiver.receive(receiver.batchSize, controller.signal);
        expect(got).toEqual([]);
        expect(Date.now() - started, 'resolved within 2 s of the abort').toBeLessThan(2_100);
      } finally {
        await receiver.close();
      }
    },
  },
  {
    id: 'groups-fan-out',
    title: 'two groups each receive the message; competing receivers of one group share it',
    async run({ driver, topic, timing, spec }) {
      const a = await driver.receiver(spec(uniqueName('ga')));
      const b = await driver.receiver(spec(uniqueName('gb')));
      try {
        await sendAll(driver, [envelope(topic, uniqueName('m'), new Uint8Array([7]))]);
        const [fromA] = await receiveN(a, 1, timing.deliveryMs);
        const [fromB] = await receiveN(b, 1, timing.deliveryMs);
        expect(fromA!.envelope.id).toBe(fromB!.envelope.id);
        expectSettled(await a.ack([fromA!]), 1);
        expectSettled(await b.ack([fromB!]), 1);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    },
  },
  {
    id: 'lease-extend',
    title: 'extend() keeps a message from another receiver of the group past its lease (when the driver has leases)',
    async run({ driver, topic, timing, spec }) {
      const group = uniqueName('g');
      const holder = await driver.receiver(spec(group));
      const other = await driver.receiver(spec(group));
      try {
        if (!holder.extend || holder.leaseMs === undefined) {
          expect(holder.extend, 'extend and leaseMs come together').toBeUndefined();
          expect(holder.leaseMs).toBeUndefined();
          return;
        }
        const leaseMs = holder.leaseMs;
        expect(leaseMs, 'a lease the suite can wait out: set a short one in subscribeOptions').toBeLessThanOrEqual(15_000);
        await sendAll(driver, [envelope(topic, uniqueName('m'), new Uint8Array([1]))]);
        const [held] = await receiveN(holder, 1, timing.deliveryMs);
        const end = Date.now() + 2 * leaseMs;
        const seen: ReceivedMessage[] = [];
        while (Date.now() < end) {
          expectSettled(await holder.extend([held!], leaseMs), 1);
          const step = Date.now() + Math.floor(leaseMs / 3);
          while (Date.now() < step) seen.push(...(await other.receive(other.batchSize, AbortSignal.timeout(Math.max(1, Math.ceil(step - Date.now()))))));
        }
        expect(
          seen.map((m) => m.id),
          'nobody else received the extended message',
        ).toEqual([]);
        expectSettled(await holder.ack([held!]), 1);
      } finally {
        await Promise.all([holder.close(), other.close()]);
      }
    },
  },
];
