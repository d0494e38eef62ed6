/**
 * The conformance suite tested on itself: adapters broken on purpose must fail the checks that
 * guard what they break. A suite that passed these would prove nothing.
 */
import { connect, type Capabilities } from '@mqkit/core';
import type { Adapter, DriverReceiver, ReceivedMessage } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { memory, memoryCapabilities, wrapAdapter, wrapReceiver } from '../index.ts';
import { uniqueName, type ConformanceHarness } from './harness.ts';
import { rejection } from './assertions.ts';
import { runScenario, scenarios } from './index.ts';
import { checkModel, FAST_MEMORY_WORKLOAD } from './model.ts';

/** How a broken driver differs from the memory driver's receiver. */
type Breakage = (receiver: DriverReceiver) => Partial<DriverReceiver>;

/** The memory adapter with its receivers broken by `breakage`. */
function broken(breakage: Breakage): Adapter {
  return wrapAdapter(memory(), (driver) => ({
    receiver: async (spec) => {
      const receiver = await driver.receiver(spec);
      return wrapReceiver(receiver, breakage(receiver));
    },
  }));
}

/** What `receiver` receives, each message passed through `change`. */
const receiving =
  (receiver: DriverReceiver, change: (m: ReceivedMessage) => ReceivedMessage): DriverReceiver['receive'] =>
  async (max, signal) =>
    (await receiver.receive(max, signal)).map(change);

const breakages: Record<string, Breakage> = {
  /** Acks as soon as the message arrives, before any handler ran. */
  'acks-before-handler': (r) => ({
    receive: async (max, signal) => {
      const got = await r.receive(max, signal);
      if (got.length > 0) await r.ack(got);
      return got;
    },
    ack: async () => {},
    nack: async () => {},
  }),
  /** Treats a nack as an ack: the message is gone. */
  'drops-on-nack': (r) => ({ nack: (messages) => r.ack(messages) }),
  /** Loses application headers on the way. */
  'drops-headers': (r) => ({
    receive: receiving(r, (m) => ({
      ...m,
      envelope: { ...m.envelope, headers: Object.fromEntries(Object.entries(m.envelope.headers).filter(([k]) => k === 'content-type')) },
    })),
  }),
  /**
   * Reports every delivery as a first one, under an id that changes each time (core's ledger
   * keeps attempts increasing for a stable id, so a broken count alone would be caught there).
   */
  'forgets-attempts': (r) => ({ receive: receiving(r, (m) => ({ ...m, deliveryCount: 1, id: `${m.id}/${Math.random()}` })) }),
};

function harness(breakage: Breakage): ConformanceHarness {
  const name = uniqueName('broken');
  const capabilities: Capabilities = memoryCapabilities();
  return {
    name: 'broken-memory',
    capabilities,
    connect: () => connect(`memory://${name}`, { adapters: [broken(breakage)] }),
    timing: { deliveryMs: 1_500, redeliveryMs: 1_500, quietMs: 300 },
  };
}

const mustFail: Record<string, string[]> = {
  'acks-before-handler': ['redelivery-after-consumer-dies', 'retry-then-succeed', 'dead-letter-after-max-attempts'],
  'drops-on-nack': ['retry-then-succeed', 'nack-with-delay', 'nack-immediate', 'key-ordering-with-retry'],
  'drops-headers': ['publish-delivers', 'headers-round-trip', 'trace-context'],
  'forgets-attempts': ['redelivery-after-consumer-dies', 'retry-then-succeed', 'nack-with-delay'],
};

describe.concurrent('conformance suite self-test: broken adapters fail', () => {
  for (const [name, ids] of Object.entries(mustFail)) {
    for (const id of ids) {
      it(`${name} fails [${id}]`, async () => {
        const scenario = scenarios.find((s) => s.id === id);
        expect(scenario, `scenario ${id} exists`).toBeDefined();
        await expect(runScenario(scenario!, harness(breakages[name]!))).rejects.toThrow();
      }, 20_000);
    }
  }
});

describe('conformance suite self-test: control', () => {
  it('the same scenarios pass on the intact memory adapter', async () => {
    const intact = harness(() => ({}));
    const ids = new Set(Object.values(mustFail).flat());
    for (const id of ids) await runScenario(scenarios.find((s) => s.id === id)!, intact);
  }, 60_000);
});

describe('conformance suite self-test: a driver claiming ordered sends that writes calls out of order', () => {
  it('fails [key-ordering-publish-waves]', async () => {
    const name = uniqueName('unordered');
    // Claims orderedSends, then lets each call overtake the ones before it at random.
    const unordered = wrapAdapter(memory(), (driver) => ({
      capabilities: { ...driver.capabilities, maxBatchSize: 10, orderedSends: true },
      send: async (envelopes) => {
        await new Promise((r) => setTimeout(r, Math.random() * 15));
        return driver.send(envelopes);
      },
    }));
    const h: ConformanceHarness = {
      name: 'unordered-sends',
      capabilities: { ...memoryCapabilities(), maxBatchSize: 10, orderedSends: true },
      connect: () => connect(`memory://${name}`, { adapters: [unordered] }),
      timing: { deliveryMs: 1_500, redeliveryMs: 1_500, quietMs: 300 },
    };
    await expect(runScenario(scenarios.find((s) => s.id === 'key-ordering-publish-waves')!, h)).rejects.toThrow();
  }, 20_000);
});

describe('model-based conformance self-test: broken adapters fail the model', () => {
  const workload = { ...FAST_MEMORY_WORKLOAD, settleMs: 1_000 };
  for (const name of ['drops-on-nack', 'acks-before-handler', 'forgets-attempts'] as const) {
    it(`${name} fails the model and the report holds a replay command`, async () => {
      const err = await rejection(checkModel(harness(breakages[name]!), { seed: 42, runs: 60, shrink: false, workload, title: 'self-test' }));
      expect(String(err)).toMatch(/seed 42, path [\d:]+/);
      expect(String(err)).toContain('MQKIT_MODEL_SEED=42 MQKIT_MODEL_PATH=');
    }, 60_000);
  }
});
