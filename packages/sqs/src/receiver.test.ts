import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { bytesCodec, connect, type Delivery } from '@mqkit/core';
import { MqError } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { sqs, type SqsNative } from './driver.ts';
import { parseSubscription } from './options.ts';
import { MAX_HIDDEN_MS, SqsReceiver, type SqsMessage } from './receiver.ts';
import type { Sender } from './send.ts';
import { META_ATTRIBUTE } from './wire.ts';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const QUEUE = 'http://sqs/000000000000/q';

type Raw = Record<string, unknown>;

/**
 * A fake SQS: receive n answers `batches[n]` once `release(n)` was called (the first at once),
 * later receives wait for their abort. Records visibility changes, deletes and re-sends.
 */
function fakeSqs(batches: Raw[][], options: { receiveError?: Error; failDelete?: string } = {}) {
  const visibility: Array<{ receiptHandle: string; seconds: number }> = [];
  const deleted: string[] = [];
  const resent: Array<{ delaySeconds: number | undefined; attributes: Raw }> = [];
  const gates = batches.map((_, i) => {
    let open!: () => void;
    const opened = new Promise<void>((r) => (open = r));
    if (i === 0) open();
    return { opened, open };
  });
  let served = 0;
  const entriesOk = (entries: Array<{ Id?: string }>) => ({ Successful: entries.map((e) => ({ Id: e.Id })), Failed: [] });
  const send = async (command: { input: Raw }, o: { abortSignal: AbortSignal }): Promise<unknown> => {
    const input = command.input;
    if (command instanceof ReceiveMessageCommand) {
      if (options.receiveError) throw options.receiveError;
      if (served < batches.length) {
        const i = served++;
        await gates[i]!.opened;
        return { Messages: batches[i] };
      }
      return new Promise((_, reject) => o.abortSignal.addEventListener('abort', () => reject(o.abortSignal.reason), { once: true }));
    }
    if (command instanceof ChangeMessageVisibilityBatchCommand) {
      const entries = input.Entries as Array<{ Id: string; ReceiptHandle: string; VisibilityTimeout: number }>;
      visibility.push(...entries.map((e) => ({ receiptHandle: e.ReceiptHandle, seconds: e.VisibilityTimeout })));
      return entriesOk(entries);
    }
    if (command instanceof DeleteMessageBatchCommand) {
      const entries = input.Entries as Array<{ Id: string; ReceiptHandle: string }>;
      deleted.push(...entries.map((e) => e.ReceiptHandle));
      const failed = entries.filter((e) => e.ReceiptHandle === options.failDelete);
      return {
        Successful: entries.filter((e) => !failed.includes(e)).map((e) => ({ Id: e.Id })),
        Failed: failed.map((e) => ({ Id: e.Id, Code: 'ReceiptHandleIsInvalid', SenderFault: true })),
      };
    }
    if (command instanceof SendMessageBatchCommand) {
      const entries = input.Entries as Array<{ Id: string; DelaySeconds?: number; MessageAttributes: Raw }>;
      resent.push(...entries.map((e) => ({ delaySeconds: e.DelaySeconds, attributes: e.MessageAttributes })));
      return { Successful: entries.map((e) => ({ Id: e.Id, MessageId: 'copy' })), Failed: [] };
    }
    if ('QueueName' in input) return { QueueUrl: `http://sqs/000000000000/${String(input.QueueName)}` };
    return {};
  };
  return { sqs: { send } as unknown as SQSClient, visibility, deleted, resent, release: (n: number) => gates[n]!.open() };
}

function receiver(fake: ReturnType<typeof fakeSqs>, options: { ordered?: boolean; redeclare?: () => Promise<string>; sender?: Sender; queueUrl?: string } = {}) {
  return new SqsReceiver(
    { sqs: fake.sqs, sender: options.sender ?? ({} as Sender), logger: silent, signingKey: new Uint8Array(32), requestTimeoutMs: 1000 },
    { topic: 't', group: 'g', queueUrl: options.queueUrl ?? QUEUE, maxInFlight: 10, ordered: options.ordered === true, redeclare: options.redeclare, settings: parseSubscription({}) },
  );
}

const message = (id: string, meta: Raw, receiveCount = '1', group?: string): Raw => ({
  MessageId: id,
  ReceiptHandle: `rh-${id}-${receiveCount}`,
  Body: 'x',
  Attributes: { ApproximateReceiveCount: receiveCount, ...(group ? { MessageGroupId: group } : {}) },
  MessageAttributes: { [META_ATTRIBUTE]: { DataType: 'String', StringValue: JSON.stringify({ v: 1, id, ts: 1, h: {}, ...meta }) } },
});

const signal = new AbortController().signal;

describe('SqsReceiver', () => {
  it('declares batches of 10, a lease of the visibility timeout, and a scope naming queue and group', () => {
    const r = receiver(fakeSqs([]));
    expect([r.batchSize, r.settleBatchSize, r.concurrency, r.leaseMs]).toEqual([10, 10, 1, 30_000]);
    expect(r.scope).toBe(`sqs:${QUEUE}\u0000g`);
    const noHeartbeat = new SqsReceiver({ sqs: fakeSqs([]).sqs, sender: {} as Sender, logger: silent, signingKey: new Uint8Array(32), requestTimeoutMs: 1000 }, {
      topic: 't',
      group: 'g',
      queueUrl: QUEUE,
      maxInFlight: 100,
      ordered: false,
      settings: parseSubscription({ heartbeat: false }),
    });
    expect([noHeartbeat.concurrency, noHeartbeat.leaseMs]).toEqual([8, undefined]);
  });

  // Defect 12 (issue #16): the count is SQS's receive count; a forged `a` does not add to it.
  it('counts deliveries from ApproximateReceiveCount, not from a forged attempts field; ids, lanes and meta', async () => {
    const fake = fakeSqs([[message('a', { a: 1000 }), message('b', { a: 7 }, '3', 'k')]]);
    const got = await receiver(fake, { ordered: true }).receive(10, signal);
    expect(got.map((m) => [m.id, m.deliveryCount, m.orderingKey, m.receiptHandle])).toEqual([
      ['a', 1, undefined, 'rh-a-1'],
      ['b', 3, 'k', 'rh-b-3'],
    ]);
    expect(got[0]!.meta).toEqual({ queue: 'q', messageId: 'a' });
    const unordered = await receiver(fakeSqs([[message('b', {}, '1', 'k')]])).receive(10, signal);
    expect(unordered[0]!.orderingKey).toBeUndefined();
  });

  // Defect 1 (issue #16): nack() without delay must not turn into a tight redelivery loop
  // through the broker; SQS hides in whole seconds, so it hides for one (as RocketMQ's minimum).
  it('a nack without delay hides for 1 s, a nack with a delay for its whole seconds', async () => {
    const fake = fakeSqs([[message('a', {}), message('b', {})]]);
    const r = receiver(fake);
    const [a, b] = await r.receive(10, signal);
    expect(await r.nack([a!], 0)).toEqual([undefined]);
    expect(await r.nack([b!], 2500)).toEqual([undefined]);
    expect(fake.visibility).toEqual([
      { receiptHandle: 'rh-a-1', seconds: 1 },
      { receiptHandle: 'rh-b-1', seconds: 3 },
    ]);
  });

  it('acks with one DeleteMessageBatch and reports each entry', async () => {
    const fake = fakeSqs([[message('a', {}), message('b', {})]], { failDelete: 'rh-b-1' });
    const r = receiver(fake);
    const got = await r.receive(10, signal);
    const results = (await r.ack(got)) as Array<MqError | undefined>;
    expect(fake.deleted).toEqual(['rh-a-1', 'rh-b-1']);
    expect(results[0]).toBeUndefined();
    expect(results[1]).toBeInstanceOf(MqError);
  });

  it('extends by the lease, never past 12 hours after the receive', async () => {
    const fake = fakeSqs([[message('a', {}), message('b', {}), message('c', {})]]);
    const r = receiver(fake);
    const [a, b, c] = await r.receive(10, signal);
    const old = (m: SqsMessage, ms: number): SqsMessage => ({ ...m, receivedAt: Date.now() - ms });
    expect(await r.extend([a!, old(b!, MAX_HIDDEN_MS - 60_000 - 10_500), old(c!, MAX_HIDDEN_MS)], 30_000)).toEqual([undefined, undefined, undefined]);
    expect(fake.visibility).toEqual([
      { receiptHandle: 'rh-a-1', seconds: 30 },
      { receiptHandle: 'rh-b-1', seconds: 10 },
    ]);
  });

  it('a nack reaching past 12 hours is a re-sent copy carrying the count; FIFO queues refuse it', async () => {
    const fake = fakeSqs([[message('a', {}, '2')]]);
    const resends: Array<[number, number]> = [];
    const sender = { sendToQueue: async (_url: string, _e: unknown, _w: unknown, seconds: number, hop: number) => void resends.push([seconds, hop]) } as unknown as Sender;
    const r = receiver(fake, { sender });
    const [a] = await r.receive(10, signal);
    expect(await r.nack([a!], 13 * 3600_000)).toEqual([undefined]);
    expect(resends).toEqual([[900, 2]]);
    expect(fake.deleted).toEqual(['rh-a-2']);
    expect(fake.visibility).toEqual([]);
    const fifo = receiver(fakeSqs([[message('f', {})]]), { sender, queueUrl: `${QUEUE}.fifo` });
    const [f] = await fifo.receive(10, signal);
    expect(await fifo.nack([f!], 13 * 3600_000)).toEqual([expect.objectContaining({ code: 'UNSUPPORTED' })]);
  });

  it('a message received before its due time is re-sent with the rest of the delay, not returned', async () => {
    const fake = fakeSqs([[message('a', { due: Date.now() + 3600_000 }), message('b', {})]]);
    const resends: number[] = [];
    const sender = { sendToQueue: async (_url: string, _e: unknown, _w: unknown, seconds: number) => void resends.push(seconds) } as unknown as Sender;
    const r = receiver(fake, { sender });
    expect((await r.receive(10, signal)).map((m) => m.id)).toEqual(['b']);
    await r.close();
    expect(resends).toEqual([900]);
    expect(fake.deleted).toEqual(['rh-a-1']);
  });

  it('a vanished queue is declared again and the failure reported; an aborted receive returns []', async () => {
    const gone = Object.assign(new Error('gone'), { name: 'QueueDoesNotExist', $metadata: { httpStatusCode: 400 } });
    let declared = 0;
    const r = receiver(fakeSqs([], { receiveError: gone }), { redeclare: async () => (declared++, QUEUE) });
    await expect(r.receive(10, signal)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(declared).toBe(1);
    const abort = new AbortController();
    const pending = receiver(fakeSqs([])).receive(10, abort.signal);
    abort.abort();
    expect(await pending).toEqual([]);
  });
});

describe('SQS on core', () => {
  async function client(batches: Raw[][], ordered: boolean) {
    const fake = fakeSqs(batches);
    const c = await connect('sqs://us-east-1?endpoint=http://sqs&sns=false', { adapters: [sqs()], logger: silent, options: { credentials: { accessKeyId: 'a', secretAccessKey: 'b' } } });
    (c.native as SqsNative).sqs.send = fake.sqs.send;
    const deliveries: Delivery<unknown>[] = [];
    const sub = await c.subscribe(ordered ? 't.fifo' : 't', {
      group: 'g',
      ordered,
      codec: bytesCodec,
      options: { heartbeat: false, pollers: 1, redrive: false },
      handler: (d) =>
        new Promise<void>((resolve, reject) => {
          deliveries.push(d);
          (d as unknown as { settle: (ok: boolean) => void }).settle = (ok) => (ok ? resolve() : reject(new Error('nack')));
        }),
    });
    return { c, sub, fake, deliveries };
  }

  // Ordered FIFO: when a message is nacked, its successors already received are given back
  // unhandled, and SQS counts that receive. Counted as attempts, a successor of a message retried
  // maxAttempts times would arrive past maxAttempts and be dead-lettered without being handled.
  it('ordered: receives given back unhandled behind a nacked message do not count as attempts', async () => {
    const g = (id: string, n: string) => message(id, {}, n, 'k');
    const { c, fake, deliveries } = await client([[g('a', '1'), g('b', '1')], [g('a', '2'), g('b', '2')], [g('b', '3')]], true);
    const settle = (i: number, ok: boolean) => (deliveries[i] as unknown as { settle: (ok: boolean) => void }).settle(ok);
    const seen = () => deliveries.map((d) => [d.id, d.attempt]);
    await expect.poll(seen).toEqual([['a', 1]]);
    settle(0, false); // a is nacked, b given back unhandled
    await expect.poll(() => fake.visibility.map((v) => v.receiptHandle)).toEqual(['rh-a-1', 'rh-b-1']);
    fake.release(1);
    await expect.poll(seen).toEqual([['a', 1], ['a', 2]]);
    settle(1, true); // b is handed over: its first delivery to a handler
    await expect.poll(seen).toEqual([['a', 1], ['a', 2], ['b', 1]]);
    settle(2, false);
    await expect.poll(() => fake.visibility.length).toBe(3);
    fake.release(2);
    await expect.poll(() => seen().at(-1)).toEqual(['b', 2]);
    settle(3, true);
    await c.close({ timeoutMs: 1000 });
  });
});
