/**
 * Fault tests against the real broker (issue 6):
 *  - 10,000 reliable publishes while the broker is SIGKILLed and restarted: every publish that
 *    resolved is consumed at least once, and an idempotent consumer applies each exactly once;
 *  - a consumer process SIGKILLed mid-handler: its message reappears after the invisible duration.
 * Both kill the shared broker or a child process; keep them short and few.
 */
import { idempotent, MemoryDedupStore, type Client } from '@mqkit/core';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueGroup } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';
import { connectRocketmq, freshTopic, INVISIBLE_MS, rocketmqEndpoint, rocketmqUrl } from './mqkit-support.ts';
import { killRocketmq, restartRocketmq, startChild, type Child } from './processes.ts';

const TOTAL = Number(process.env.MQKIT_RMQ_FAULT_TOTAL ?? 10_000);
const IN_FLIGHT = 64;

const clients: Client[] = [];
const children: Child[] = [];
afterAll(async () => {
  await Promise.allSettled(children.map((c) => c.kill()));
  await Promise.allSettled(clients.map((c) => c.close({ timeoutMs: 0 })));
});

async function client(options = {}, publishTimeoutMs?: number): Promise<Client> {
  const c = await connectRocketmq(options, publishTimeoutMs ? { publish: { timeoutMs: publishTimeoutMs, maxDelayMs: 2000 } } : {});
  clients.push(c);
  return c;
}

describe('rocketmq faults', () => {
  it(`${TOTAL} reliable publishes survive a broker SIGKILL + restart: none lost, each applied once`, async () => {
    const topic = await freshTopic('fault-pub', 'NORMAL');
    // Publishes wait out the outage (restart takes ~20 s) instead of failing at the default 30 s.
    const publisher = await client({}, 120_000);
    const consumer = await client();
    const effects = new Map<string, number>();
    const seen = new Set<string>();
    let deliveries = 0;
    await consumer.subscribe(topic, {
      group: uniqueGroup('fault-pub'),
      concurrency: 32,
      middleware: [
        async (d, next) => {
          seen.add(d.id);
          deliveries += 1;
          await next();
        },
        idempotent(new MemoryDedupStore()),
      ],
      handler: (d) => {
        effects.set(d.id, (effects.get(d.id) ?? 0) + 1);
      },
    });

    const resolved: string[] = [];
    const rejected: string[] = [];
    let next = 0;
    let killed: Promise<void> | undefined;
    const worker = async (): Promise<void> => {
      while (next < TOTAL) {
        const n = next++;
        const id = `fault-${n}`;
        try {
          await publisher.publish(topic, { n }, { id });
          resolved.push(id);
        } catch {
          rejected.push(id);
        }
        if (!killed && resolved.length >= TOTAL / 4) {
          killed = (async () => {
            await killRocketmq();
            await sleep(3000);
            await restartRocketmq();
          })();
        }
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    await killed;
    const publishMs = Date.now() - started;

    await waitFor('every resolved publish to be consumed', () => resolved.every((id) => seen.has(id)), { timeoutMs: 180_000, intervalMs: 500 });
    await sleep(2000);
    const missing = resolved.filter((id) => !seen.has(id));
    const applied = resolved.map((id) => effects.get(id) ?? 0);
    console.info(
      `[rocketmq fault] ${resolved.length} resolved, ${rejected.length} rejected, publish phase ${publishMs} ms, ` +
        `${missing.length} lost, ${deliveries - seen.size} redeliveries absorbed by idempotent(), ${applied.filter((n) => n > 1).length} applied twice`,
    );
    expect(killed).toBeDefined();
    expect(missing).toEqual([]);
    expect(applied.every((n) => n === 1)).toBe(true);
    expect(resolved.length).toBeGreaterThan(TOTAL / 2);
  }, 420_000);

  it('a consumer killed mid-handler: its message reappears after the invisible duration', async () => {
    const topic = await freshTopic('fault-kill', 'NORMAL');
    const group = uniqueGroup('fault-kill');
    const { namesrv } = rocketmqEndpoint();
    const child = startChild('hang-consumer', {
      url: rocketmqUrl(),
      options: { invisibleDurationMs: INVISIBLE_MS, awaitDurationMs: 2000, ...(namesrv ? { namesrv } : {}) },
      topic,
      group,
    });
    children.push(child);
    await child.waitFor((e) => e.event === 'subscribed', 60_000);
    const publisher = await client();
    const receipt = await publisher.publish(topic, { n: 1 });
    const handling = await child.waitFor((e) => e.event === 'handling', 30_000);
    const firstAt = Number(handling.at);
    // Let the child's heartbeat renew the message once: a killed process stops renewing it.
    await sleep(INVISIBLE_MS / 2);
    await child.kill();
    const killedAt = Date.now();

    const again = await client();
    const redelivered: Array<{ id: string; attempt: number; at: number }> = [];
    await again.subscribe(topic, { group, handler: (d) => void redelivered.push({ id: d.id, attempt: d.attempt, at: Date.now() }) });
    await waitFor('the redelivery', () => redelivered.length > 0, { timeoutMs: INVISIBLE_MS * 3 });
    const first = redelivered[0]!;
    console.info(`[rocketmq fault] handler started at +0, child killed at +${killedAt - firstAt} ms, redelivered at +${first.at - firstAt} ms (attempt ${first.attempt})`);
    expect(first.id).toBe(receipt.id);
    expect(first.attempt).toBeGreaterThanOrEqual(2);
    // Not before the invisible duration, counted from the heartbeat's renewal (every third of it)
    // that happened before the kill: the message was held by the heartbeat, then by nothing.
    expect(first.at - firstAt).toBeGreaterThanOrEqual(Math.floor(INVISIBLE_MS / 3) + INVISIBLE_MS - 1000);
  }, 120_000);
});
