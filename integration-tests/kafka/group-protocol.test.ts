/**
 * KIP-848 (`groupProtocol: 'consumer'`, the broker-side assignor of Kafka ≥ 4.0) on the real
 * broker, through @platformatic/kafka: two members share a topic, one leaves, the other takes its
 * partitions over; everything is handled and committed. kafkajs only speaks the classic protocol,
 * so asking it for KIP-848 is CONFIG. Runs the same whatever MQKIT_KAFKA_CLIENT says: the client
 * is named here.
 */
import { bytesCodec, connect } from '@mqkit/core';
import { kafka } from '@mqkit/kafka';
import { rejectedMqError } from '@mqkit/testing/conformance';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueGroup } from '../src/names.ts';
import { waitFor } from '../src/wait.ts';
import { brokers, closeAll, createTopic, openKafka } from './harness.ts';

afterAll(closeAll);

const N = 300;
const kip848 = { client: 'platformatic', groupProtocol: 'consumer' } as const;

describe('kafka group protocol (KIP-848)', () => {
  it("groupProtocol 'consumer': two members share the partitions; after one leaves the other handles the rest; all committed", async () => {
    const topic = await createTopic('kip848', 4);
    const group = uniqueGroup('kip848');
    const publisher = await openKafka({ options: kip848 });
    const handled = new Set<string>();
    const byMember = [new Set<string>(), new Set<string>()];
    const member = (index: number) => ({
      group,
      codec: bytesCodec,
      concurrency: 4,
      handler: async (d: { id: string }) => {
        await new Promise((r) => setTimeout(r, 5));
        byMember[index]!.add(d.id);
        handled.add(d.id);
      },
    });
    const a = await openKafka({ options: kip848 });
    const subA = await a.subscribe(topic, member(0));
    const b = await openKafka({ options: kip848 });
    const subB = await b.subscribe(topic, member(1));
    const body = new Uint8Array(32);
    let published = 0;
    const publishSome = async (n: number) => {
      const outcomes = await publisher.publishBatch(Array.from({ length: n }, (_, i) => ({ topic, payload: body, codec: bytesCodec, key: `k${(published + i) % 40}`, id: `m-${published + i}` })));
      expect(outcomes.filter((o) => !o.ok)).toEqual([]);
      published += n;
    };
    // The broker's assignor hands partitions to the second member over a few heartbeats
    // (group.consumer.heartbeat.interval.ms): publish until both members have handled some.
    const deadline = Date.now() + 60_000;
    while (byMember[0]!.size === 0 || byMember[1]!.size === 0) {
      if (Date.now() > deadline) throw new Error(`after 60 s, members handled ${byMember[0]!.size} and ${byMember[1]!.size} messages`);
      await publishSome(20);
      await new Promise((r) => setTimeout(r, 250));
    }
    await waitFor(`the first ${published} handled`, () => handled.size >= published, { timeoutMs: 60_000 });

    await subB.close();
    await publishSome(N);
    await waitFor(`all ${published} handled`, () => handled.size >= published, { timeoutMs: 90_000 });
    expect(handled.size).toBe(published);
    await subA.close();

    // Everything handled was committed: a new member of the group finds nothing left.
    const late = new Set<string>();
    const c = await openKafka({ options: kip848 });
    await c.subscribe(topic, { group, codec: bytesCodec, handler: (d) => void late.add(d.id) });
    await publisher.publish(topic, body, { codec: bytesCodec, id: 'sentinel' });
    await waitFor('the sentinel', () => late.has('sentinel'), { timeoutMs: 60_000 });
    expect([...late].filter((id) => id !== 'sentinel')).toEqual([]);
  });

  it("kafkajs with groupProtocol 'consumer' is CONFIG, naming the client to use", async () => {
    const err = await rejectedMqError(connect(`kafka://${brokers}?client=kafkajs&groupProtocol=consumer`, { adapters: [kafka()] }));
    expect(err.code).toBe('CONFIG');
    expect(err.message).toMatch(/platformatic/);
  });
});
