/**
 * The `mqkit` CLI on the real RabbitMQ (#20): the shared scenario (src/cli-scenario.ts) plus what
 * is particular here: the dead letters live in the quorum queue `<topic>-dlq`, read by holding
 * them (basic.get, then given back), and AMQP cannot list queues.
 */
import type { DlqLsDocument, LagDocument } from '@mqkit/cli';
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

/** `url` with one more query parameter (under testcontainers it already has `managementUrl`). */
const withParam = (u: string, param: string): string => `${u}${u.includes('?') ? '&' : '?'}${param}`;

/** Declares `topic` with its dead-letter topic and publishes 2 messages straight to the dead-letter exchange (the keep-all queue takes them). */
async function twoDeadLetters(topic: string): Promise<void> {
  const client = await connect(url, { adapters: [rabbitmq()], topology: 'create' });
  try {
    await client.declare({ topic, groups: [], deadLetter: true });
    await client.publish(`${topic}-dlq`, { x: 1 });
    await client.publish(`${topic}-dlq`, { x: 2 });
  } finally {
    await client.close();
  }
}

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

  it('bad input exits 2 with one line: an unknown dead-letter queue; over AMQP alone (management=false) lag without a group and dlq ls without a topic', async () => {
    const missing = await mqkit(['dlq', 'show', fresh('nothing'), '--url', url]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^mqkit: NOT_FOUND: .*NOT_FOUND - no queue '.*-dlq'.*\n$/);
    const amqpOnly = withParam(url, 'management=false');
    const lag = await mqkit(['lag', 'orders', '--url', amqpOnly]);
    expect(lag.code).toBe(2);
    expect(lag.stderr).toContain('mqkit: UNSUPPORTED: rabbitmq: cannot list consumer groups');
    const ls = await mqkit(['dlq', 'ls', '--url', amqpOnly]);
    expect(ls.code).toBe(2);
    expect(ls.stderr).toContain('name the topic');
  }, 60_000);

  it('with the management API: lag lists a topic’s groups with ready + unacked (in flight), dlq ls finds dead-letter topics without a name', async () => {
    const topic = fresh('mgmt');
    const group = uniqueGroup('billing');
    const client = await connect(url, { adapters: [rabbitmq()], topology: 'create' });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    try {
      await client.declare({ topic, groups: [group], deadLetter: true });
      for (let i = 0; i < 5; i++) await client.publish(topic, { i });
      await client.publish(`${topic}-dlq`, { dead: true });
      // 2 held unacked by a handler that waits; 3 ready behind them (concurrency 2, no prefetch beyond)
      let started = 0;
      await client.subscribe(topic, { group, concurrency: 2, prefetch: 0, handler: async () => { started += 1; await gate; } });
      await waitFor('2 handlers running', () => started === 2);
      // The management API samples queue stats (every 5 s): wait until one sample shows them all.
      const lag = await waitFor('ready 3 + unacked 2 and 1 consumer in lag', async () => {
        const r = await mqkit(['lag', topic, '--json', '--url', url]);
        const row = r.json<LagDocument>().groups.find((g) => g.group === group);
        return row?.ready === 3 && row.inFlight === 2 && row.consumers === 1 ? row : undefined;
      });
      expect(lag).toMatchObject({ topic, group, backlog: 5, ready: 3, inFlight: 2, consumers: 1 });
      const table = await mqkit(['lag', topic, '--url', url]);
      expect(table.stdout).toMatch(new RegExp(`^TOPIC\\s+GROUP\\s+BACKLOG\\s+READY\\s+IN FLIGHT\\s+CONSUMERS\\n${topic}\\s+${group}\\s+5\\s+3\\s+2\\s+1\\n`));
      // A dead-letter exchange that keeps no queue of its own (deadLetterQueue=false): listed by
      // the API, nothing to read there; `dlq ls` leaves it out instead of failing NOT_FOUND.
      const noQueue = fresh('noq');
      const bare = await connect(withParam(url, 'deadLetterQueue=false'), { adapters: [rabbitmq()], topology: 'create' });
      try {
        await bare.declare({ topic: noQueue, groups: [], deadLetter: true });
      } finally {
        await bare.close();
      }
      const ls = await mqkit(['dlq', 'ls', '--json', '--url', url]);
      expect(ls.code, ls.stderr).toBe(0);
      const listed = ls.json<DlqLsDocument>().deadLetterTopics;
      expect(listed.find((d) => d.topic === `${topic}-dlq`)).toMatchObject({ depth: 1 });
      expect(listed.map((d) => d.topic)).not.toContain(`${noQueue}-dlq`);
      // named, it is still an error
      expect((await mqkit(['dlq', 'ls', noQueue, '--url', url])).code).toBe(2);
    } finally {
      release();
      await client.close();
    }
  }, 60_000);

  it('a replay that dies after reading, before removing, loses nothing: the held messages return to the queue', async () => {
    const topic = fresh('crash');
    await twoDeadLetters(topic);
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
    await twoDeadLetters(topic);
    const r = await mqkit(['dlq', 'purge', topic, '--yes', '--json', '--url', url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toEqual({ adapter: 'rabbitmq', topic: `${topic}-dlq`, purged: 2 });
    expect((await mqkit(['dlq', 'ls', topic, '--json', '--url', url])).json<DlqLsDocument>().deadLetterTopics[0]?.depth).toBe(0);
  }, 60_000);
});
