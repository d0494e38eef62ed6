/**
 * Topology on the real Redis (#22): `client.declare()` makes the stream and a consumer group per
 * group (at `0`, as a subscription would), an empty dead-letter stream; `verify` and `verify`
 * mode name what is missing.
 */
import type { Client, ConnectOptions } from '@mqkit/core';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { rejectedMqError } from '@mqkit/testing/conformance';
import { uniqueName } from '../src/names.ts';
import { runQuickstart } from '../src/quickstart.ts';
import { connectStreams, deleteTopics, redisUrl } from './harness.ts';

const topics: string[] = [];
const clients: Client[] = [];
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close({ timeoutMs: 0 })));
  await deleteTopics(topics);
});

async function open(options: ConnectOptions = {}): Promise<Client> {
  const client = await connectStreams(options);
  clients.push(client);
  return client;
}

function fresh(prefix: string): string {
  const topic = uniqueName(prefix);
  topics.push(topic);
  return topic;
}

describe('redis-streams topology (#22)', () => {
  it("the README quickstart runs with the URL alone and topology: 'create'", async () => {
    await runQuickstart(redisUrl(), fresh('quickstart'), 'billing');
  }, 60_000);

  it('declare makes the stream, the groups and an empty dead-letter stream; verify passes; a declared group keeps an early publish', async () => {
    const client = await open({ topology: 'verify' });
    const topic = fresh('declared');
    await client.declare({ topic, groups: ['billing', 'shipping'] });
    await client.verify({ topic, groups: ['billing', 'shipping'] });
    const redis = new Redis(redisUrl());
    try {
      expect(await redis.type(`${topic}-dlq`)).toBe('stream');
      expect(await redis.xlen(`${topic}-dlq`)).toBe(0);
      const groups = (await redis.xinfo('GROUPS', `${topic}-dlq`)) as unknown[];
      expect(groups).toEqual([]); // the throwaway group that made the stream is gone
    } finally {
      redis.disconnect();
    }
    const receipt = await client.publish(topic, { n: 1 });
    const got: string[] = [];
    await client.subscribe(topic, { group: 'billing', handler: (m) => void got.push(m.id) });
    const deadline = Date.now() + 10_000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([receipt.id]);
    await client.declare({ topic, groups: ['billing'] }); // idempotent
  }, 30_000);

  it('verify mode: subscribe to a missing stream and group fails fast with NOT_FOUND naming them and the declare call', async () => {
    const client = await open({ topology: 'verify' });
    const topic = fresh('missing');
    const err = await rejectedMqError(client.subscribe(topic, { group: 'billing', handler: () => {} }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.details.missing).toEqual([
      { kind: 'topic', name: topic },
      { kind: 'group', name: 'billing', topic },
      { kind: 'dead-letter topic', name: `${topic}-dlq` },
    ]);
    expect(err.message).toContain(`client.declare({ topic: '${topic}', groups: ['billing'] })`);
    await client.publish(topic, { n: 1 }); // the stream exists now, its group does not
    const group = await rejectedMqError(client.verify({ topic, groups: ['billing'], deadLetter: false }));
    expect(group.details.missing).toEqual([{ kind: 'group', name: 'billing', topic }]);
  }, 30_000);
});
