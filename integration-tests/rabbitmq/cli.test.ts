/**
 * The `mqkit` CLI on the real RabbitMQ (#20): the shared scenario (src/cli-scenario.ts) plus what
 * is particular here: the dead letters live in the quorum queue `<topic>-dlq`, read by holding
 * them (basic.get, then given back), and AMQP cannot list queues.
 */
import type { DlqLsDocument } from '@mqkit/cli';
import { connect } from '@mqkit/core';
import { silentLogger } from '@mqkit/core/driver';
import { ops, rabbitmq } from '@mqkit/rabbitmq';
import { afterAll, describe, expect, it } from 'vitest';
import { dlqScenario, healthScenario, mqkit, topologyScenario } from '../src/cli-scenario.ts';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueGroup, uniqueTopic } from '../src/names.ts';
import { waitFor } from '../src/wait.ts';
import { deleteTopicResources } from './cleanup.ts';

const { url } = requireBroker('rabbitmq');
const topics = new Set<string>();
const fresh = (prefix: string): string => {
  const t = uniqueTopic(prefix);
  topics.add(t);
  return t;
};

afterAll(async () => {
  await deleteTopicResources(url, topics);
}, 120_000);

describe('mqkit CLI on rabbitmq (#20)', () => {
  it('dlq ls/show/replay, lag and a fixed consumer getting everything', async () => {
    await dlqScenario({ url, adapter: rabbitmq(), topic: fresh('cli'), group: uniqueGroup('billing') });
  }, 120_000);

  it('topology verify/plan/apply: what is missing, created, then kept for the declared group (#22)', async () => {
    await topologyScenario({ url, adapter: rabbitmq(), topic: fresh('topo'), group: uniqueGroup('billing') });
  }, 120_000);

  it('health exits 0, and 1 on an unreachable broker', async () => {
    await healthScenario(url, 'amqp://guest:guest@127.0.0.1:1', fresh('health'));
  }, 60_000);

  it('bad input exits 2 with one line: unknown dead-letter queue, lag without a group, dlq ls without a topic', async () => {
    const missing = await mqkit(['dlq', 'show', fresh('nothing'), '--url', url]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^mqkit: NOT_FOUND: .*NOT_FOUND - no queue '.*-dlq'.*\n$/);
    const lag = await mqkit(['lag', 'orders', '--url', url]);
    expect(lag.code).toBe(2);
    expect(lag.stderr).toContain('mqkit: UNSUPPORTED: rabbitmq: cannot list consumer groups');
    const ls = await mqkit(['dlq', 'ls', '--url', url]);
    expect(ls.code).toBe(2);
    expect(ls.stderr).toContain('name the topic');
  }, 60_000);

  it('a replay that dies after reading, before removing, loses nothing: the held messages return to the queue', async () => {
    const topic = fresh('crash');
    const client = await connect(url, { adapters: [rabbitmq()], topology: 'create' });
    try {
      await client.declare({ topic, groups: [], deadLetter: true });
      await client.publish(`${topic}-dlq`, { x: 1 });
      await client.publish(`${topic}-dlq`, { x: 2 });
    } finally {
      await client.close();
    }
    const o = await ops().create(url, {}, { logger: silentLogger });
    const batch = await o.read(`${topic}-dlq`, 10);
    expect(batch.messages).toHaveLength(2);
    // Held by this reader: not in the ready count meanwhile.
    expect((await mqkit(['dlq', 'ls', topic, '--json', '--url', url])).json<DlqLsDocument>().deadLetterTopics[0]?.depth).toBe(0);
    await o.close(); // the process "dies": no release, no remove
    await waitFor('both back in the queue', async () => (await mqkit(['dlq', 'ls', topic, '--json', '--url', url])).json<DlqLsDocument>().deadLetterTopics[0]?.depth === 2);
  }, 60_000);

  it('purge empties the dead-letter queue', async () => {
    const topic = fresh('purge');
    const client = await connect(url, { adapters: [rabbitmq()], topology: 'create' });
    try {
      await client.declare({ topic, groups: [], deadLetter: true });
      // Published straight to the dead-letter exchange: the keep-all queue takes it.
      await client.publish(`${topic}-dlq`, { x: 1 });
      await client.publish(`${topic}-dlq`, { x: 2 });
    } finally {
      await client.close();
    }
    const r = await mqkit(['dlq', 'purge', topic, '--yes', '--json', '--url', url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toEqual({ adapter: 'rabbitmq', topic: `${topic}-dlq`, purged: 2 });
    expect((await mqkit(['dlq', 'ls', topic, '--json', '--url', url])).json<DlqLsDocument>().deadLetterTopics[0]?.depth).toBe(0);
  }, 60_000);
});
