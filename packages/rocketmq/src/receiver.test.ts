import { MqError, type SubscriptionSpec } from '@mqkit/core/driver';
import type { MessageView, SimpleConsumer } from 'rocketmq-client-nodejs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from './options.ts';
import { ackHandle } from './receipt-handle.ts';
import { entryResults, receiversFor, RocketmqReceiver, type RocketmqMessage } from './receiver.ts';

const spec = (ordered = false): SubscriptionSpec => ({ topic: 't', group: 'g', maxInFlight: 64, ordered, maxAttempts: 3, deadLetterTopic: 't-dlq', options: {} });
const config = parseConfig('rocketmq://127.0.0.1:8081?namespace=ns', {});

/** A received view: handle fields as the broker writes them (field 7 carries the original start offset). */
function view(id: string, facade = 'ep1', topic = 'ns%t'): MessageView {
  return {
    messageId: id,
    topic,
    endpoints: { facade },
    receiptHandle: `renewed-${id} 1 2 3 4 5 6 original-${id}`,
    deliveryAttempt: 2,
    messageGroup: undefined,
    properties: new Map([
      ['x-mqkit-id', `app-${id}`],
      ['x-mqkit-key', `key-${id}`],
    ]),
    body: Buffer.from('x'),
  } as unknown as MessageView;
}

interface AckCall {
  facade: string;
  topic: string;
  handles: string[];
}

function fakeConsumer(answer: (call: AckCall) => { code: number; entries?: Array<{ messageId: string; code: number }> } | Error = () => ({ code: 20000 })) {
  const acks: AckCall[] = [];
  const changes: Array<[string, number]> = [];
  const consumer = {
    async receive(max: number) {
      return [view('1'), view('2')].slice(0, max);
    },
    async ackMessageViaRpc(endpoints: { facade: string }, request: { getTopic(): { getName(): string }; getEntriesList(): Array<{ getReceiptHandle(): string }> }) {
      const call = { facade: endpoints.facade, topic: request.getTopic().getName(), handles: request.getEntriesList().map((e) => e.getReceiptHandle()) };
      acks.push(call);
      const a = answer(call);
      if (a instanceof Error) throw a;
      return {
        toObject: () => ({
          status: { code: a.code, message: a.code === 20000 ? 'OK' : 'MULTIPLE_RESULTS' },
          entriesList: (a.entries ?? []).map((e) => ({ messageId: e.messageId, status: { code: e.code, message: 'receipt handle is expired' } })),
        }),
      };
    },
    async changeInvisibleDuration(v: MessageView, ms: number) {
      if (v.messageId === 'bad') throw Object.assign(new Error('14 UNAVAILABLE: Connection dropped'), { code: 14 });
      changes.push([v.messageId, ms]);
    },
    async shutdown() {},
  };
  return { consumer: consumer as unknown as SimpleConsumer, acks, changes };
}

function receiver(consumer: SimpleConsumer, fifo = false, ordered = false): RocketmqReceiver {
  return new RocketmqReceiver({ spec: spec(ordered), fifo, config, onClosed: () => {} }, consumer, {});
}

const message = (v: MessageView): RocketmqMessage => ({ view: v, renewed: false, envelope: undefined as never, deliveryCount: 1, id: v.messageId });

describe('RocketmqReceiver', () => {
  it('declares what core needs: batch, receive calls, lease and a scope per cluster and group', () => {
    const r = receiver(fakeConsumer().consumer);
    expect(r.batchSize).toBe(32);
    expect(r.concurrency).toBe(2);
    expect(r.leaseMs).toBe(30_000);
    expect(r.scope).toBe('127.0.0.1:8081/ns\u0000g');
  });

  it('receives views as messages: broker attempt, message id, lane only when ordered', async () => {
    const { consumer } = fakeConsumer();
    const [m] = await receiver(consumer).receive(1);
    expect(m).toMatchObject({ id: '1', deliveryCount: 2, orderingKey: undefined, meta: { messageId: '1' } });
    expect(m!.envelope.key).toBe('key-1');
    const [o] = await receiver(consumer, true, true).receive(1);
    expect(o!.orderingKey).toBe('key-1');
  });

  it('acks one request per (topic, endpoint) and answers in input order', async () => {
    const { consumer, acks } = fakeConsumer();
    const batch = [message(view('1', 'ep1')), message(view('2', 'ep2')), message(view('3', 'ep1'))];
    expect(await receiver(consumer).ack(batch)).toEqual([undefined, undefined, undefined]);
    expect(acks.map((a) => [a.facade, a.handles.length])).toEqual([
      ['ep1', 2],
      ['ep2', 1],
    ]);
  });

  it("settles each message with its own entry's status, classified", async () => {
    const { consumer } = fakeConsumer(() => ({ code: 30000, entries: [{ messageId: '1', code: 20000 }, { messageId: '2', code: 40013 }] }));
    const results = (await receiver(consumer).ack([message(view('1')), message(view('2'))])) as Array<MqError | undefined>;
    expect(results[0]).toBeUndefined();
    expect(results[1]).toBeInstanceOf(MqError);
  });

  it('a failed request fails each of its messages only', async () => {
    const { consumer } = fakeConsumer((call) => (call.facade === 'ep2' ? Object.assign(new Error('14 UNAVAILABLE: Connection dropped'), { code: 14 }) : { code: 20000 }));
    const results = (await receiver(consumer).ack([message(view('1', 'ep2')), message(view('2', 'ep1'))])) as Array<MqError | undefined>;
    expect(MqError.is(results[0], 'CONNECTION')).toBe(true);
    expect(results[1]).toBeUndefined();
  });

  it('after a renewal, a non-FIFO ack uses the original start offset (apache/rocketmq#9583); FIFO acks as renewed', async () => {
    for (const fifo of [false, true]) {
      const { consumer, acks } = fakeConsumer();
      const r = receiver(consumer, fifo);
      const renewed = message(view('1'));
      expect(await r.extend([renewed], 30_000)).toEqual([undefined]);
      expect(renewed.renewed).toBe(true);
      const fresh = message(view('2'));
      await r.ack([renewed, fresh]);
      expect(acks[0]!.handles).toEqual([fifo ? renewed.view.receiptHandle : ackHandle(renewed.view.receiptHandle), fresh.view.receiptHandle]);
    }
  });

  it('nack changes the invisible duration to the delay, at least 1 s; failures are per message', async () => {
    const { consumer, changes } = fakeConsumer();
    const results = (await receiver(consumer).nack([message(view('1')), message(view('bad'))], 0)) as Array<MqError | undefined>;
    expect(changes).toEqual([['1', 1000]]);
    expect(results[0]).toBeUndefined();
    expect(MqError.is(results[1], 'CONNECTION')).toBe(true);
    await receiver(consumer).nack([message(view('3'))], 5000);
    expect(changes.at(-1)).toEqual(['3', 5000]);
  });
});

describe('entryResults', () => {
  const entry = (id: string) => ({ messageId: id });
  const ok = { code: 20000, message: 'OK' };
  const expired = { code: 40013, message: 'receipt handle is expired' };

  it('reads each entry by position (as the proxy answers) and by message id otherwise', () => {
    const entries = [entry('1'), entry('2'), entry('3')];
    const inOrder = entryResults(entries, [{ messageId: '1', status: ok }, { messageId: '2', status: expired }, { messageId: '3', status: ok }], { code: 30000, message: 'MULTIPLE_RESULTS' });
    expect(inOrder.map((r) => r === undefined)).toEqual([true, false, true]);
    expect((inOrder[1] as Error & { code: number }).code).toBe(40013);
    const shuffled = entryResults(entries, [{ messageId: '3', status: ok }, { messageId: '1', status: expired }, { messageId: '2', status: ok }], { code: 30000, message: 'MULTIPLE_RESULTS' });
    expect(shuffled.map((r) => r === undefined)).toEqual([false, true, true]);
  });

  it('gives an entry the response leaves out the status of the whole request', () => {
    expect(entryResults([entry('1')], [], ok)).toEqual([undefined]);
    const [missing] = entryResults([entry('1')], [], { code: 30000, message: 'MULTIPLE_RESULTS' });
    expect(missing).toBeInstanceOf(Error);
  });
});

describe('receiversFor', () => {
  it('opens one receive call per batch that fits the in-flight budget, at most 4, one when ordered', () => {
    expect(receiversFor({ ordered: false, maxInFlight: 16 }, 32)).toBe(1);
    expect(receiversFor({ ordered: false, maxInFlight: 64 }, 32)).toBe(2);
    expect(receiversFor({ ordered: false, maxInFlight: 256 }, 32)).toBe(4);
    expect(receiversFor({ ordered: false, maxInFlight: 256 }, 32, 8)).toBe(8);
    expect(receiversFor({ ordered: true, maxInFlight: 256 }, 32, 8)).toBe(1);
  });
});
