import { PullSubscription, silentLogger, type DriverDelivery, type Envelope, type SubscriptionSpec } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { MemoryDriver } from './driver.ts';
import { MemoryBroker } from './broker.ts';

function envelope(topic: string, body: Uint8Array): Envelope {
  return { id: `m-${Math.random()}`, topic, headers: {}, body, timestamp: Date.now() };
}

/** A memory driver with one subscription to topic `t` (group `g`, unordered, maxAttempts 5 unless `spec` says otherwise). */
async function subscribed(deliver: (d: DriverDelivery) => void, spec: Partial<SubscriptionSpec> = {}): Promise<MemoryDriver> {
  const driver = new MemoryDriver(new MemoryBroker(), 1024);
  const full: SubscriptionSpec = { topic: 't', group: 'g', maxInFlight: 8, ordered: false, maxAttempts: 5, deadLetterTopic: 't-dlq', options: {}, ...spec };
  new PullSubscription(await driver.receiver(full), { spec: full, sink: { deliver, error: () => {} }, logger: silentLogger }).start();
  return driver;
}

describe('memory broker', () => {
  it('a nack(0) redelivery waits for the event loop to turn: an always-nacking consumer does not starve timers', async () => {
    let deliveries = 0;
    let beforeTimer: number | undefined;
    const timer = new Promise<void>((resolve) =>
      setTimeout(() => {
        beforeTimer = deliveries;
        resolve();
      }, 0),
    );
    // Stops by itself after 10,000 deliveries, so that a broker that redelivers on a microtask
    // fails this test instead of hanging it.
    const driver = await subscribed(
      (d) => {
        deliveries += 1;
        void (deliveries < 10_000 ? d.nack(0) : d.ack());
      },
      { maxAttempts: Number.POSITIVE_INFINITY },
    );
    await driver.send([envelope('t', new Uint8Array([1]))]);
    await timer;
    expect(beforeTimer).toBeLessThan(10);
    await driver.close();
  });

  it('a nack(0) still redelivers, with the attempt counted', async () => {
    const attempts: number[] = [];
    const driver = await subscribed(
      (d) => {
        attempts.push(d.attempt);
        void (d.attempt < 3 ? d.nack(0) : d.ack());
      },
      { ordered: true },
    );
    await driver.send([{ ...envelope('t', new Uint8Array([1])), key: 'k' }]);
    await new Promise((r) => setTimeout(r, 50));
    expect(attempts).toEqual([1, 2, 3]);
    await driver.close();
  });

  it('carries a 0-byte body', async () => {
    const bodies: Uint8Array[] = [];
    const driver = await subscribed((d) => {
      bodies.push(d.envelope.body);
      void d.ack();
    });
    await driver.send([envelope('t', new Uint8Array(0))]);
    await new Promise((r) => setTimeout(r, 20));
    expect(bodies.map((b) => b.byteLength)).toEqual([0]);
    await driver.close();
  });
});
