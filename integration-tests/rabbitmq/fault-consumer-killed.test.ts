/**
 * Issue 5 fault test: a consumer process SIGKILLed while it holds unacked messages. Everything it
 * had not acked comes back to the group (with a higher attempt count from the quorum queue's
 * delivery count), and the idempotent consumer that takes over applies each id once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connect, idempotent, MemoryDedupStore, type Client } from '@mqkit/core';
import { rabbitmq } from '@mqkit/rabbitmq';
import { afterAll, describe, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueGroup, uniqueTopic } from '../src/names.ts';
import { waitFor } from '../src/wait.ts';
import { deleteTopicResources } from './cleanup.ts';

const { url } = requireBroker('rabbitmq');
const TOTAL = 10_000;
const CHILD_CONCURRENCY = 50;

const clients: Client[] = [];
const topics = new Set<string>();
const track = (topic: string): string => {
  topics.add(topic);
  return topic;
};
let child: ChildProcess | undefined;
afterAll(async () => {
  child?.kill('SIGKILL');
  await Promise.allSettled(clients.map((c) => c.close({ timeoutMs: 1_000 })));
  await deleteTopicResources(url, topics).catch((err) => console.warn('cleanup failed', err));
}, 120_000);

describe('rabbitmq: consumer SIGKILLed while holding unacked messages', () => {
  it('every unacked message comes back to the group and is applied once by the next consumer', async () => {
    const topic = track(uniqueTopic('fault-consumer'));
    const group = uniqueGroup('fault');
    const producer = await connect(url, { adapters: [rabbitmq()] });
    clients.push(producer);
    // Declare the group before publishing (publishes to a topic without queues are UNROUTABLE).
    await (producer.native as { declareGroup(t: string, g: string): Promise<string> }).declareGroup(topic, group);
    const ids = (await Promise.all(Array.from({ length: TOTAL }, (_, n) => producer.publish(topic, { n }, { id: `c-${n}` })))).map((r) => r.id);

    const done = new Set<string>();
    const held = new Set<string>();
    let ready = false;
    child = spawn(process.execPath, ['--conditions=mqkit-source', join(import.meta.dirname, 'consumer-child.ts'), url, topic, group, String(CHILD_CONCURRENCY)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const [what, id] = line.split(' ');
      if (what === 'ready') ready = true;
      else if (what === 'done' && id) done.add(id);
      else if (what === 'held' && id) held.add(id);
    });
    await waitFor('the child consumer to hold its full concurrency of unacked messages', () => ready && held.size >= CHILD_CONCURRENCY, {
      timeoutMs: 60_000,
    });
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    const heldAtDeath = new Set(held);
    const doneAtDeath = new Set(done);

    const consumer = await connect(url, { adapters: [rabbitmq()] });
    clients.push(consumer);
    const effects = new Map<string, number>();
    const attempts = new Map<string, number>();
    await consumer.subscribe(topic, {
      group,
      concurrency: 32,
      middleware: [
        (d, next) => {
          attempts.set(d.id, Math.max(attempts.get(d.id) ?? 0, d.attempt));
          return next();
        },
        idempotent(new MemoryDedupStore()),
      ],
      handler: (d) => {
        effects.set(d.id, (effects.get(d.id) ?? 0) + 1);
      },
    });
    await waitFor('every message handled by the child or the new consumer', () => ids.every((id) => doneAtDeath.has(id) || effects.has(id)), {
      timeoutMs: 60_000,
    });
    const lostHeld = [...heldAtDeath].filter((id) => !effects.has(id));
    console.info(
      `[fault consumer-killed] ${TOTAL} messages; child done ${doneAtDeath.size}, held unacked ${heldAtDeath.size} at SIGKILL; ` +
        `new consumer applied ${effects.size} (of which re-handled after the child's own success: ${[...doneAtDeath].filter((id) => effects.has(id)).length})`,
    );
    expect(lostHeld).toEqual([]);
    for (const id of heldAtDeath) expect(attempts.get(id)).toBeGreaterThanOrEqual(2);
    expect([...effects.values()].every((c) => c === 1)).toBe(true);
  }, 180_000);
});
