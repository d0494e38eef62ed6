/**
 * Issue 16, defect 9 on RocketMQ: the broker processes (namesrv, broker + proxy) paused
 * (SIGSTOP) with publishes in flight. publish.timeoutMs is a hard deadline and pending publishes
 * stay within publish.maxPending; after SIGCONT publishes succeed again.
 */
import { rocketmq } from '@mqkit/rocketmq';
import { describe, expect, it } from 'vitest';
import { publishStallScenario, STALL_TIMEOUT_MS } from '../src/publish-stall.ts';
import { freshTopic, INVISIBLE_MS, rocketmqEndpoint, rocketmqUrl } from './mqkit-support.ts';

describe('rocketmq: broker processes paused (SIGSTOP)', () => {
  it(`publish rejects at ${STALL_TIMEOUT_MS} ms, pending stays bounded, and publishing recovers after SIGCONT`, async () => {
    const { namesrv } = rocketmqEndpoint();
    const seen = await publishStallScenario({
      broker: 'rocketmq',
      url: rocketmqUrl(),
      adapter: rocketmq(),
      options: { invisibleDurationMs: INVISIBLE_MS, awaitDurationMs: 2000, ...(namesrv ? { namesrv } : {}) },
      sendsHang: false, // the adapter's requestTimeoutMs (5 s) ends the hung calls within the pause
      prepare: () => freshTopic('stall', 'NORMAL'),
    });
    expect(seen.lastTimeoutMs).toBeLessThan(STALL_TIMEOUT_MS + 1_500);
  }, 180_000);
});
