/**
 * Issue 16, defect 9 on Kafka: the broker process paused (SIGSTOP) with publishes in flight.
 * publish.timeoutMs is a hard deadline (TIMEOUT on time although kafkajs' request never returns)
 * and pending publishes stay within publish.maxPending; after SIGCONT publishes succeed again.
 */
import { kafka } from '@mqkit/kafka';
import { afterAll, describe, expect, it } from 'vitest';
import { publishStallScenario, STALL_TIMEOUT_MS } from '../src/publish-stall.ts';
import { closeAll, createTopic, kafkaUrl } from './harness.ts';

afterAll(closeAll);

describe('kafka: broker process paused (SIGSTOP)', () => {
  it(`publish rejects with TIMEOUT at ${STALL_TIMEOUT_MS} ms, pending stays bounded, and publishing recovers after SIGCONT`, async () => {
    const seen = await publishStallScenario({
      broker: 'kafka',
      url: kafkaUrl,
      adapter: kafka(),
      sendsHang: true, // kafkajs requestTimeout 30 s
      prepare: () => createTopic('stall'),
    });
    expect(seen.lastTimeoutMs).toBeLessThan(STALL_TIMEOUT_MS + 1_500);
  }, 180_000);
});
