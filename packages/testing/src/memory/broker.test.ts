import type { DriverDelivery, Envelope } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { MemoryDriver } from './driver.ts';
import { MemoryBroker } from './broker.ts';

function envelope(topic: string, body: Uint8Array): Envelope {
  return { id: `m-${Math.random()}`, topic, headers: {}, body, timestamp: Date.now() };
}

describe('memory broker', () => {
  it('a nack(0) redelivery waits for the event loop to turn: an always-nacking consumer does not starve timers', async () => {
    const driver = new MemoryDriver(new MemoryBroker(), 1024);
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
    await driver.subscribe(
      { topic: 't', group: 'g', maxInFlight: 8, ordered: false, maxAttempts: Number.POSITIVE_INFINITY, deadLetterTopic: 't-dlq', options: {} },
      {
        deliver: (d: DriverDelivery) => {
          deliveries += 1;
          void (deliveries < 10_000 ? d.nack(0) : d.ack());
        },
        error: () => {},
      },
    );
    await driver.send([envelope('t', new Uint8Array([1]))]);
    await timer;
    expect(beforeTimer).toBeLessThan(10);
    await driver.close();
  });

  it('a nack(0) still redelivers, with the attempt counted', async () => {
    const driver = new MemoryDriver(new MemoryBroker(), 1024);
    const attempts: number[] = [];
    await driver.subscribe(
      { topic: 't', group: 'g', maxInFlight: 8, ordered: true, maxAttempts: 5, deadLetterTopic: 't-dlq', options: {} },
      {
        deliver: (d) => {
          attempts.push(d.attempt);
          void (d.attempt < 3 ? d.nack(0) : d.ack());
        },
        error: () => {},
      },
    );
    await driver.send([{ ...envelope('t', new Uint8Array([1])), key: 'k' }]);
    await new Promise((r) => setTimeout(r, 50));
    expect(attempts).toEqual([1, 2, 3]);
    await driver.close();
  });

  it('carries a 0-byte body', async () => {
    const driver = new MemoryDriver(new MemoryBroker(), 1024);
    const bodies: Uint8Array[] = [];
    await driver.subscribe(
      { topic: 't', group: 'g', maxInFlight: 8, ordered: false, maxAttempts: 5, deadLetterTopic: 't-dlq', options: {} },
      { deliver: (d) => { bodies.push(d.envelope.body); void d.ack(); }, error: () => {} },
    );
    await driver.send([envelope('t', new Uint8Array(0))]);
    await new Promise((r) => setTimeout(r, 20));
    expect(bodies.map((b) => b.byteLength)).toEqual([0]);
    await driver.close();
  });
});
