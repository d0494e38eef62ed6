/**
 * The `mqkit` CLI on the real Redis (#20): the shared scenario (src/cli-scenario.ts); here the
 * dead-letter topic is the stream `<topic>-dlq`, read with XRANGE (nothing changes) and trimmed
 * by entry id, and `lag` is XINFO GROUPS (lag + pending).
 */
import type { DlqLsDocument, LagDocument } from '@mqkit/cli';
import { redisStreams } from '@mqkit/redis-streams';
import { afterAll, describe, expect, it } from 'vitest';
import { dlqScenario, healthScenario, mqkit, topologyScenario } from '../src/cli-scenario.ts';
import { uniqueGroup, uniqueName } from '../src/names.ts';
import { connectStreams, deleteTopics, redisUrl } from './harness.ts';

const topics: string[] = [];
const fresh = (prefix: string): string => {
  const t = uniqueName(prefix);
  topics.push(t, `${t}-dlq`);
  return t;
};
afterAll(async () => {
  await deleteTopics(topics);
});

describe('mqkit CLI on redis-streams (#20)', () => {
  const url = redisUrl();

  it('dlq ls/show/replay, lag and a fixed consumer getting everything', async () => {
    await dlqScenario({ url, adapter: redisStreams(), topic: fresh('cli'), group: uniqueGroup('billing') });
  }, 120_000);

  it('topology verify/plan/apply: what is missing, created, then kept for the declared group (#22)', async () => {
    await topologyScenario({ url, adapter: redisStreams(), topic: fresh('topo'), group: uniqueGroup('billing') });
  }, 120_000);

  it('health exits 0, and 1 on an unreachable server', async () => {
    await healthScenario(url, 'redis://127.0.0.1:1', fresh('health'));
  }, 60_000);

  it('unknown stream exits 2; purge trims the stream; lag without a group lists every group', async () => {
    const missing = await mqkit(['dlq', 'show', fresh('nothing'), '--url', url]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^mqkit: NOT_FOUND: stream ".*-dlq" does not exist\n$/);
    const topic = fresh('purge');
    const client = await connectStreams({ topology: 'create' });
    try {
      await client.declare({ topic, groups: ['a', 'b'], deadLetter: true });
      await client.publish(`${topic}-dlq`, { x: 1 });
      await client.publish(`${topic}-dlq`, { x: 2 });
      await client.publish(topic, { y: 1 });
    } finally {
      await client.close();
    }
    const lag = await mqkit(['lag', topic, '--json', '--url', url]);
    expect(lag.json<LagDocument>().groups).toEqual([
      { topic, group: 'a', partition: null, backlog: 1, ready: 1, inFlight: 0, consumers: 0 },
      { topic, group: 'b', partition: null, backlog: 1, ready: 1, inFlight: 0, consumers: 0 },
    ]);
    const r = await mqkit(['dlq', 'purge', topic, '--yes', '--json', '--url', url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toEqual({ adapter: 'redis-streams', topic: `${topic}-dlq`, purged: 2 });
    expect((await mqkit(['dlq', 'ls', topic, '--json', '--url', url])).json<DlqLsDocument>().deadLetterTopics[0]?.depth).toBe(0);
  }, 60_000);
});
