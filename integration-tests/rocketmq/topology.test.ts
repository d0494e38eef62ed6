/**
 * Topology on the real RocketMQ 5 (#22): `client.declare()` creates typed topics (FIFO when
 * ordered) and consumer groups through the name server, the README quickstart runs on a new topic
 * with `topology: 'create'`, and the errors of `verify` mode, of a missing name server and of the
 * default mode name the topic, the group and what creates them.
 */
import type { Client, ConnectOptions } from '@mqkit/core';
import { RocketmqAdmin, type RocketmqOptions } from '@mqkit/rocketmq';
import { afterAll, describe, expect, it } from 'vitest';
import { rejectedMqError } from '@mqkit/testing/conformance';
import { uniqueGroup, uniqueTopic } from '../src/names.ts';
import { runQuickstart } from '../src/quickstart.ts';
import { connectRocketmq, rocketmqEndpoint } from './mqkit-support.ts';

const clients: Client[] = [];
afterAll(() => Promise.allSettled(clients.map((c) => c.close({ timeoutMs: 0 }))));

async function open(options: RocketmqOptions = {}, extra: ConnectOptions = {}): Promise<Client> {
  const client = await connectRocketmq(options, extra);
  clients.push(client);
  return client;
}

async function receive(client: Client, topic: string, group: string, count: number, ordered = false): Promise<Set<number>> {
  const got = new Set<number>();
  await client.subscribe<{ n: number }>(topic, { group, ordered, handler: (m) => void got.add(m.payload.n) });
  const deadline = Date.now() + 30_000;
  while (got.size < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return got;
}

describe('rocketmq topology (#22)', () => {
  it("the README quickstart runs with the URL alone (namesrv in it) and topology: 'create' (NORMAL topic, -dlq and group created at subscribe)", async () => {
    const { endpoints, namesrv } = rocketmqEndpoint();
    // RocketMQ groups span topics: a group of its own per run, as the README's 'billing' would be in an app.
    await runQuickstart(`rocketmq://${endpoints.split(';').join(',')}?namesrv=${namesrv}`, uniqueTopic('quickstart'), uniqueGroup('billing'));
  }, 90_000);

  it("'create' mode declares a topic before the first publish to it (NOT_FOUND before), DELAY for a delayed first publish", async () => {
    const client = await open({}, { topology: 'create' });
    const topic = uniqueTopic('publish-first');
    await client.publish(topic, { n: 1 });
    const timers = uniqueTopic('publish-first-delayed');
    await client.publish(timers, { n: 1 }, { delayMs: 1_000 });
    await client.verify({ topic: timers, delayed: true, deadLetter: false });
  }, 90_000);

  it('declare creates a FIFO topic and an orderly group when ordered; verify passes; a declared group keeps an early publish', async () => {
    const client = await open();
    const topic = uniqueTopic('fifo');
    const group = uniqueGroup('g');
    await client.declare({ topic, ordered: true, groups: [group], partitions: 2 });
    await client.verify({ topic, ordered: true, groups: [group] });
    await Promise.all([1, 2, 3].map((n) => client.publish(topic, { n }, { key: 'k' })));
    expect([...(await receive(client, topic, group, 3, true))].sort()).toEqual([1, 2, 3]);
    await client.declare({ topic, ordered: true, groups: [group] }); // idempotent
  }, 90_000);

  it('verify names the missing topic, group and dead-letter topic and the declare call; a NORMAL topic declared ordered is CONFIG', async () => {
    const client = await open();
    const topic = uniqueTopic('missing');
    const group = uniqueGroup('g');
    const err = await rejectedMqError(client.verify({ topic, groups: [group] }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.details.missing).toEqual([
      { kind: 'topic', name: topic },
      { kind: 'group', name: group, topic },
      { kind: 'dead-letter topic', name: `${topic}-dlq` },
    ]);
    expect(err.message).toContain(`client.declare({ topic: '${topic}', groups: ['${group}'] })`);
    await client.declare({ topic });
    const misfit = await rejectedMqError(client.verify({ topic, ordered: true }));
    expect(misfit.code).toBe('CONFIG');
    expect(misfit.message).toContain(`topic "${topic}" is a NORMAL topic; ordered needs a FIFO topic`);
    expect((await rejectedMqError(client.declare({ topic, ordered: true }))).code).toBe('CONFIG');
  }, 60_000);

  it('verify mode: subscribe to a missing topic fails fast with NOT_FOUND naming it', async () => {
    const client = await open({}, { topology: 'verify' });
    const topic = uniqueTopic('missing');
    const err = await rejectedMqError(client.subscribe(topic, { group: 'billing', handler: () => {} }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain(`topic "${topic}" does not exist`);
    expect(err.message).toContain(`client.declare({ topic: '${topic}', groups: ['billing'] })`);
  }, 30_000);

  it("default mode: subscribe and publish to a missing topic fail with NOT_FOUND naming it (not 'No topic route info' alone)", async () => {
    const client = await open({}, { publish: { timeoutMs: 10_000 } });
    const topic = uniqueTopic('missing');
    const sub = await rejectedMqError(client.subscribe(topic, { group: 'billing', handler: () => {} }));
    expect(sub.code).toBe('NOT_FOUND');
    expect(sub.message).toContain(`topic "${topic}" does not exist`);
    expect(sub.message).toContain(`client.declare({ topic: '${topic}', groups: ['billing'] })`);
    const pub = await rejectedMqError(client.publish(topic, { n: 1 }));
    expect(pub.code).toBe('NOT_FOUND');
    expect(pub.message).toContain(`topic "${topic}" does not exist`);
  }, 60_000);

  it('without the name server, declare is CONFIG naming the namesrv option, and the missing-topic error says how to create it', async () => {
    const client = await open({ namesrv: undefined, declareGroups: false }, {});
    const topic = uniqueTopic('nonamesrv');
    const err = await rejectedMqError(client.declare({ topic }));
    expect(err.code).toBe('CONFIG');
    expect(err.message).toContain('namesrv=host:9876');
    const sub = await rejectedMqError(client.subscribe(topic, { group: 'billing', handler: () => {} }));
    expect(sub.message).toContain('namesrv');
    expect(sub.message).toContain('mqadmin updateTopic');
  }, 30_000);
});

describe('rocketmq topology: delayed topics (#22)', () => {
  it('declare({ delayed: true }) creates a DELAY topic that takes delayed publishes; ordered and delayed together is CONFIG', async () => {
    const client = await open();
    const topic = uniqueTopic('delayed');
    const group = uniqueGroup('g');
    await client.declare({ topic, delayed: true, groups: [group] });
    await client.verify({ topic, delayed: true, groups: [group] });
    const receipt = await client.publish(topic, { n: 1 }, { delayMs: 1_500 });
    const got: string[] = [];
    await client.subscribe(topic, { group, handler: (m) => void got.push(m.id) });
    const deadline = Date.now() + 30_000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual([receipt.id]);
    const both = await rejectedMqError(client.declare({ topic: uniqueTopic('both'), ordered: true, delayed: true }));
    expect(both.code).toBe('CONFIG');
    expect(both.message).toContain('a RocketMQ topic is FIFO, DELAY or TRANSACTION');
    const normal = uniqueTopic('normal');
    await client.declare({ topic: normal });
    const misfit = await rejectedMqError(client.verify({ topic: normal, delayed: true }));
    expect(misfit.code).toBe('CONFIG');
    expect(misfit.message).toContain('delayed needs a DELAY topic');
  }, 90_000);
});

describe('rocketmq topology: where a declared group starts (#22)', () => {
  it('a group declared on a topic with messages starts at its end: it gets what comes after the declare, not before (the committed offset, not the page cache, decides)', async () => {
    const client = await open();
    const topic = uniqueTopic('start');
    const group = uniqueGroup('g');
    await client.declare({ topic, partitions: 1, deadLetter: false });
    await Promise.all([1, 2].map((n) => client.publish(topic, { n })));
    // The broker moves a stored message into its queue's index a moment later (asynchronously).
    await new Promise((r) => setTimeout(r, 1_000));
    await client.declare({ topic, partitions: 1, groups: [group], deadLetter: false });
    const admin = new RocketmqAdmin({ namesrv: rocketmqEndpoint().namesrv! });
    expect(await admin.consumerOffset(group, topic, 0)).toBe(2n);
    await Promise.all([3, 4].map((n) => client.publish(topic, { n })));
    const got = await receive(client, topic, group, 2);
    await new Promise((r) => setTimeout(r, 1_500));
    expect([...got].sort()).toEqual([3, 4]);
  }, 90_000);
});

describe('rocketmq topology: transactional topics (#22)', () => {
  it('declare({ transactional: true }) creates a TRANSACTION topic that client.transaction() publishes to; verify names a plain topic as a misfit', async () => {
    const client = await open();
    const topic = uniqueTopic('tx');
    const group = uniqueGroup('g');
    await client.declare({ topic, transactional: true, groups: [group] });
    await client.verify({ topic, transactional: true, groups: [group] });
    await client.transaction(async (tx) => {
      await tx.publish(topic, { n: 1 });
      await tx.publish(topic, { n: 2 });
    });
    expect([...(await receive(client, topic, group, 2))].sort()).toEqual([1, 2]);
    const plain = uniqueTopic('plain');
    await client.declare({ topic: plain, deadLetter: false });
    const misfit = await rejectedMqError(client.verify({ topic: plain, transactional: true, deadLetter: false }));
    expect(misfit.code).toBe('CONFIG');
    expect(misfit.message).toContain('transactional needs a TRANSACTION topic');
    expect((await rejectedMqError(client.declare({ topic: uniqueTopic('both'), ordered: true, transactional: true }))).code).toBe('CONFIG');
  }, 90_000);
});
