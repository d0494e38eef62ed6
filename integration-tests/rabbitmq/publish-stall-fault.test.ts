/**
 * Issue 16, defect 9 on RabbitMQ: the broker process paused (SIGSTOP) with publishes waiting for
 * their confirms. publish.timeoutMs is a hard deadline (TIMEOUT on time although no confirm ever
 * comes) and pending publishes stay within publish.maxPending; after SIGCONT publishes succeed
 * again and the group consumes what was published then.
 */
import type { Client } from '@mqkit/core';
import { rabbitmq } from '@mqkit/rabbitmq';
import { afterAll, describe, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueGroup, uniqueTopic } from '../src/names.ts';
import { publishStallScenario, STALL_TIMEOUT_MS } from '../src/publish-stall.ts';
import { waitFor } from '../src/wait.ts';
import { deleteTopicResources } from './cleanup.ts';

const { url } = requireBroker('rabbitmq');
const topics = new Set<string>();
afterAll(async () => {
  await deleteTopicResources(url, topics).catch((err) => console.warn('cleanup failed', err));
}, 60_000);

describe('rabbitmq: broker process paused (SIGSTOP)', () => {
  it(`publish rejects with TIMEOUT at ${STALL_TIMEOUT_MS} ms, pending stays bounded, and publishing recovers after SIGCONT`, async () => {
    const received = new Set<string>();
    const seen = await publishStallScenario({
      broker: 'rabbitmq',
      url,
      adapter: rabbitmq(),
      sendsHang: true, // confirms just never come; heartbeat 10 s, missed only after ~20 s
      // Publishes are mandatory: a group queue must exist before anything can be routed.
      async prepare(client: Client) {
        const topic = uniqueTopic('stall');
        topics.add(topic);
        await client.subscribe(topic, { group: uniqueGroup('stall'), handler: (d) => void received.add(d.id) });
        return topic;
      },
      async afterResume(_topic, ids) {
        await waitFor('the group to consume what was published after SIGCONT', () => ids.every((id) => received.has(id)), { timeoutMs: 60_000 });
      },
    });
    expect(seen.lastTimeoutMs).toBeLessThan(STALL_TIMEOUT_MS + 1_500);
  }, 180_000);
});
