/**
 * Raw rocketmq-client-nodejs 1.0.8 (gRPC, RocketMQ 5 proxy) against the real broker: normal send +
 * SimpleConsumer receive/ack/redelivery, and transactional (half) messages: committed, rolled back,
 * and one left undecided that the broker's check-back resolves through the producer's checker.
 * Topics are typed and unique per run (created with createRocketmqTopics).
 */
import { type MessageView, Producer, SimpleConsumer } from 'rocketmq-client-nodejs';
import definitionPb from 'rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueGroup, uniqueTopic } from '../src/names.ts';
import { createRocketmqTopics, quietRocketmqLogger } from '../src/rocketmq.ts';
import { sleep } from '../src/wait.ts';

// TransactionResolution is not re-exported by the package: it lives in the generated proto module.
const { TransactionResolution } = definitionPb;
type Resolution = (typeof TransactionResolution)[keyof typeof TransactionResolution];

const { endpoints } = requireBroker('rocketmq');
const topic = uniqueTopic('raw-rmq');
const txTopic = uniqueTopic('raw-rmq-tx');
const base = { endpoints, namespace: '', logger: quietRocketmqLogger } as const;
const clients: Array<{ shutdown(): Promise<void> }> = [];

async function started<T extends { startup(): Promise<void>; shutdown(): Promise<void> }>(c: T): Promise<T> {
  clients.push(c);
  await c.startup();
  return c;
}

function consumerFor(t: string): Promise<SimpleConsumer> {
  // awaitDuration 5 s: the proxy's default minimum long-polling time
  return started(new SimpleConsumer({ ...base, consumerGroup: uniqueGroup('raw-rmq'), subscriptions: new Map([[t, '*']]), awaitDuration: 5_000 }));
}

/** Receives until `until` holds or the time is up; returns everything received, in order. */
async function receiveUntil(
  c: SimpleConsumer,
  until: (all: MessageView[]) => boolean,
  opts: { timeoutMs: number; invisibleMs?: number; onMessage?: (m: MessageView) => Promise<void> },
): Promise<MessageView[]> {
  const all: MessageView[] = [];
  const deadline = Date.now() + opts.timeoutMs;
  while (!until(all) && Date.now() < deadline) {
    const batch = await c.receive(32, opts.invisibleMs ?? 10_000);
    for (const m of batch) {
      all.push(m);
      if (opts.onMessage) await opts.onMessage(m);
    }
  }
  return all;
}

const caseOf = (m: MessageView) => m.properties.get('case');

beforeAll(async () => {
  await createRocketmqTopics([`${topic}:NORMAL`, `${txTopic}:TRANSACTION`]);
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.shutdown()));
});

describe('rocketmq-client-nodejs raw client', () => {
  it('normal send → SimpleConsumer receive + ack; the one message left unacked comes back with deliveryAttempt 2', async () => {
    const producer = await started(new Producer({ ...base, topic, maxAttempts: 3 }));
    const consumer = await consumerFor(topic);

    const receipts = [];
    for (let i = 0; i < 5; i++) {
      receipts.push(
        await producer.send({
          topic,
          tag: 'raw',
          keys: [`key-${i}`],
          properties: new Map([['mqkit-id', `id-${i}`]]),
          body: Buffer.from(`body-${i}`),
        }),
      );
    }
    for (const r of receipts) expect(r.messageId).toMatch(/^[0-9A-F]+$/i);

    const unacked = 'id-4';
    const first = await receiveUntil(consumer, (all) => all.length >= 5, {
      timeoutMs: 60_000,
      invisibleMs: 10_000,
      onMessage: async (m) => {
        if (m.properties.get('mqkit-id') !== unacked) await consumer.ack(m);
      },
    });
    expect(first.map((m) => m.properties.get('mqkit-id')).sort()).toEqual(['id-0', 'id-1', 'id-2', 'id-3', 'id-4']);
    expect(first.map((m) => m.messageId).sort()).toEqual(receipts.map((r) => r.messageId).sort());
    for (const m of first) {
      const i = m.properties.get('mqkit-id')!.slice(3);
      expect(m.body.toString()).toBe(`body-${i}`);
      expect(m.tag).toBe('raw');
      expect(m.keys).toEqual([`key-${i}`]);
      expect(m.deliveryAttempt).toBe(1);
    }

    // after the 10 s invisible duration only the unacked one reappears
    const again = await receiveUntil(consumer, (all) => all.some((m) => m.properties.get('mqkit-id') === unacked), {
      timeoutMs: 40_000,
      onMessage: (m) => consumer.ack(m),
    });
    expect(again.map((m) => m.properties.get('mqkit-id'))).toEqual([unacked]);
    expect(again[0]!.deliveryAttempt).toBe(2);
  });

  it('transactions: committed is delivered, rolled back never is, an undecided one is resolved by the check-back (COMMIT)', async () => {
    // the checker answers from "local state", as a real service would from its database
    const decided = new Map<string, Resolution>();
    const checked: string[] = [];
    const producer = await started(
      new Producer({
        ...base,
        topic: txTopic, // check-back only reaches producers constructed with the topic
        maxAttempts: 3,
        checker: {
          async check(m: MessageView) {
            const c = caseOf(m) ?? '?';
            checked.push(c);
            return decided.get(c) ?? TransactionResolution.TRANSACTION_RESOLUTION_UNSPECIFIED;
          },
        },
      }),
    );
    const consumer = await consumerFor(txTopic);

    const half = async (c: string) => {
      const tx = producer.beginTransaction();
      const receipt = await producer.send({ topic: txTopic, tag: 'tx', properties: new Map([['case', c]]), body: Buffer.from(c) }, tx);
      expect(receipt.transactionId).toBeTruthy();
      return tx;
    };

    const t1 = await half('commit');
    decided.set('commit', TransactionResolution.COMMIT);
    await t1.commit();

    const t2 = await half('rollback');
    decided.set('rollback', TransactionResolution.ROLLBACK);
    await t2.rollback();

    await half('undecided'); // never committed nor rolled back by us
    decided.set('undecided', TransactionResolution.COMMIT);
    const sentUndecidedAt = Date.now();

    const got = await receiveUntil(consumer, (all) => all.some((m) => caseOf(m) === 'undecided') && all.some((m) => caseOf(m) === 'commit'), {
      timeoutMs: 90_000,
      onMessage: (m) => consumer.ack(m),
    });
    const resolvedAfterMs = Date.now() - sentUndecidedAt;
    // one more look for anything that should not be there
    await sleep(1_000);
    got.push(...(await consumer.receive(32, 10_000)));

    expect(got.map(caseOf).sort()).toEqual(['commit', 'undecided']);
    expect(checked).toContain('undecided');
    expect(checked).not.toContain('rollback');
    expect(resolvedAfterMs).toBeGreaterThan(500); // it took a check-back, not an immediate commit
  });
});
