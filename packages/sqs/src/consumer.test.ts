import type { DriverDelivery, MqError } from '@mqkit/core/driver';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher.ts';
import { QueueConsumer, type ConsumerParts } from './consumer.ts';
import { parseSubscription } from './options.ts';
import type { Sender } from './send.ts';
import { META_ATTRIBUTE } from './wire.ts';

const silent = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * A consumer over a fake SQS: receive n returns `batches[n]` once `release(n)` was called (the
 * first is released at once), later ones wait for the abort.
 */
function harness(messages: Array<Record<string, unknown>>, options: { ordered?: boolean; later?: Array<Array<Record<string, unknown>>> } = {}) {
  const visibility: Array<{ receiptHandle: string; seconds: number }> = [];
  const batches = [messages, ...(options.later ?? [])];
  const gates = batches.map((_, i) => {
    let open!: () => void;
    const opened = new Promise<void>((r) => (open = r));
    if (i === 0) open();
    return { opened, open };
  });
  let served = 0;
  const sqs = {
    send: (_command: unknown, o: { abortSignal: AbortSignal }) => {
      if (served < batches.length) {
        const i = served++;
        return gates[i]!.opened.then(() => ({ Messages: batches[i] }));
      }
      const options = o;
      return new Promise((_, reject) => options.abortSignal.addEventListener('abort', () => reject(options.abortSignal.reason), { once: true }));
    },
  } as unknown as SQSClient;
  const parts: ConsumerParts = {
    sqs,
    sender: {} as Sender,
    logger: silent,
    signingKey: new Uint8Array(32),
    givenBack: new Map(),
    requestTimeoutMs: 1000,
    deletes: new Batcher<string>(async (_, e) => e.map(() => undefined), (err) => err as MqError),
    visibility: new Batcher<{ receiptHandle: string; seconds: number }>(
      async (_, entries) => {
        visibility.push(...entries);
        return entries.map(() => undefined);
      },
      (err) => err as MqError,
    ),
  };
  const deliveries: DriverDelivery[] = [];
  const consumer = new QueueConsumer(
    parts,
    { topic: 't', group: 'g', queueUrl: 'http://sqs/q', maxInFlight: 10, ordered: options.ordered === true, settings: parseSubscription({ heartbeat: false, pollers: 1 }) },
    { deliver: (d) => void deliveries.push(d), error: () => {} },
  );
  return { consumer, deliveries, visibility, release: (n: number) => gates[n]!.open() };
}

const message = (id: string, meta: Record<string, unknown>, receiveCount = '1', group?: string) => ({
  MessageId: id,
  ReceiptHandle: `rh-${id}-${receiveCount}`,
  Body: 'x',
  Attributes: { ApproximateReceiveCount: receiveCount, ...(group ? { MessageGroupId: group } : {}) },
  MessageAttributes: { [META_ATTRIBUTE]: { DataType: 'String', StringValue: JSON.stringify({ v: 1, id, ts: 1, h: {}, ...meta }) } },
});

describe('QueueConsumer', () => {
  // Defect 1 (issue #16): nack() without delay must not turn into a tight redelivery loop
  // through the broker; SQS hides in whole seconds, so it hides for one (as RocketMQ's minimum).
  it('a nack without delay hides the message for 1 s, a nack with a delay for its whole seconds', async () => {
    const h = harness([message('a', {}), message('b', {})]);
    h.consumer.start();
    await new Promise((r) => setTimeout(r, 20));
    expect(h.deliveries).toHaveLength(2);
    await h.deliveries[0]!.nack(0);
    await h.deliveries[1]!.nack(2500);
    expect(h.visibility).toEqual([
      { receiptHandle: 'rh-a-1', seconds: 1 },
      { receiptHandle: 'rh-b-1', seconds: 3 },
    ]);
    await h.consumer.close();
  });

  // Defect 12 (issue #16): the attempt is SQS's receive count; a forged `a` does not add to it.
  it('counts attempts from ApproximateReceiveCount, not from a forged attempts field', async () => {
    const h = harness([message('a', { a: 1000 }), message('b', { a: 7 }, '3')]);
    h.consumer.start();
    await new Promise((r) => setTimeout(r, 20));
    expect(h.deliveries.map((d) => d.attempt)).toEqual([1, 3]);
    await h.consumer.close();
  });

  // Ordered FIFO: when a message is nacked, its successors already received are given back
  // unhandled, and SQS counts that receive. Counted as attempts, a successor of a message retried
  // maxAttempts times would arrive past maxAttempts and be dead-lettered without being handled.
  it('ordered: receives given back unhandled behind a nacked message do not count as attempts', async () => {
    const h = harness([message('a', {}, '1', 'k'), message('b', {}, '1', 'k')], {
      ordered: true,
      later: [[message('a', {}, '2', 'k'), message('b', {}, '2', 'k')], [message('b', {}, '3', 'k')]],
    });
    h.consumer.start();
    await new Promise((r) => setTimeout(r, 20));
    expect(h.deliveries.map((d) => d.envelope.id)).toEqual(['a']);
    await h.deliveries[0]!.nack(0); // b is given back unhandled
    h.release(1);
    await new Promise((r) => setTimeout(r, 20));
    expect(h.deliveries.map((d) => [d.envelope.id, d.attempt])).toEqual([
      ['a', 1],
      ['a', 2],
    ]);
    await h.deliveries[1]!.ack(); // b is handed over: its first delivery to a handler
    expect(h.deliveries.map((d) => [d.envelope.id, d.attempt])).toEqual([
      ['a', 1],
      ['a', 2],
      ['b', 1],
    ]);
    await h.deliveries[2]!.nack(0);
    h.release(2);
    await new Promise((r) => setTimeout(r, 20));
    expect(h.deliveries.map((d) => [d.envelope.id, d.attempt]).at(-1)).toEqual(['b', 2]);
    await h.consumer.close();
  });
});
