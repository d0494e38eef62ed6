/**
 * The subscription's bookkeeping against a scripted consumer (the seam, not a broker): contiguous
 * commits, ordered lanes, nack redelivery with tracked attempts, rebalance drops, close.
 */
import { MqError, type DriverDelivery, type SubscriptionSpec } from '@mqkit/core/driver';
import { describe, expect, it, vi } from 'vitest';
import { classifyKafkaError } from './client/kafkajs-errors.ts';
import type { ConsumerListener, ConsumerSeam, FetchedRecord, KafkaClientSeam, TopicOffsets } from './client/seam.ts';
import { toRecord } from './records.ts';
import { KafkaSubscription, type KafkaSubscriptionSettings } from './subscription.ts';

const silent = { debug() {}, info() {}, warn() {}, error() {} };

class ScriptedConsumer implements ConsumerSeam {
  listener!: ConsumerListener;
  commits: TopicOffsets[] = [];
  paused = false;
  disconnected = false;
  async start(listener: ConsumerListener) {
    this.listener = listener;
    listener.onAssignment({ t: [0, 1] });
  }
  pause() {
    this.paused = true;
  }
  resume() {
    this.paused = false;
  }
  async commit(offsets: TopicOffsets) {
    this.commits.push(offsets);
  }
  async disconnect() {
    this.disconnected = true;
  }
  committed(partition: number): string | undefined {
    return this.commits.flatMap((c) => c.partitions).filter((p) => p.partition === partition).at(-1)?.offset;
  }
}

function record(offset: number, key?: string, delayMs?: number): FetchedRecord {
  const r = toRecord({ id: `m${offset}`, topic: 't', key, headers: {}, body: new Uint8Array([offset]), timestamp: 1, delayMs });
  return { ...r, offset: String(offset) };
}

async function setup(spec: Partial<SubscriptionSpec> = {}, settings: Partial<KafkaSubscriptionSettings> = {}) {
  const consumer = new ScriptedConsumer();
  const seam = { consumer: () => consumer, classify: classifyKafkaError } as unknown as KafkaClientSeam;
  const delivered: DriverDelivery[] = [];
  const sub = new KafkaSubscription(
    seam,
    { topic: 't', group: 'g', maxInFlight: 16, ordered: false, maxAttempts: 5, deadLetterTopic: 't-dlq', options: {}, ...spec },
    { deliver: (d) => delivered.push(d), error: () => {} },
    { groupId: 'g.t', fromBeginning: true, sessionTimeout: 1, heartbeatInterval: 1, maxWaitTimeInMs: 1, maxBufferedMessages: 4, joinTimeoutMs: 100, commitIntervalMs: 0, ...settings },
    silent,
    () => {},
  );
  await sub.start();
  const flush = () => new Promise((r) => setImmediate(r));
  return { consumer, sub, delivered, flush };
}

describe('KafkaSubscription', () => {
  it('commits each partition contiguously, never past an unfinished message', async () => {
    const { consumer, delivered, flush } = await setup();
    consumer.listener.onBatch({ topic: 't', partition: 0, records: [record(0), record(1), record(2)] });
    expect(delivered.map((d) => d.envelope.id)).toEqual(['m0', 'm1', 'm2']);
    expect(delivered[0]!.meta).toEqual({ partition: '0', offset: '0' });
    await delivered[2]!.ack();
    await delivered[1]!.ack();
    await flush();
    expect(consumer.committed(0)).toBeUndefined();
    await delivered[0]!.ack();
    await flush();
    expect(consumer.committed(0)).toBe('3');
  });

  it('nack holds the record uncommitted and redelivers it with attempt + 1', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const { consumer, delivered, flush } = await setup();
      consumer.listener.onBatch({ topic: 't', partition: 1, records: [record(5), record(6)] });
      await delivered[0]!.nack(1_000);
      await delivered[1]!.ack();
      expect(delivered).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(999);
      expect(delivered).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(1);
      expect(delivered).toHaveLength(3);
      expect(delivered[2]!.envelope.id).toBe('m5');
      expect(delivered[2]!.attempt).toBe(2);
      expect(consumer.committed(1)).toBeUndefined();
      await delivered[2]!.ack();
      await flush();
      expect(consumer.committed(1)).toBe('7');
    } finally {
      vi.useRealTimers();
    }
  });

  it('ordered: hands out one message per key; a nacked one comes back before later ones of its key', async () => {
    const { consumer, delivered } = await setup({ ordered: true });
    consumer.listener.onBatch({ topic: 't', partition: 0, records: [record(0, 'a'), record(1, 'a'), record(2, 'b')] });
    expect(delivered.map((d) => d.envelope.id)).toEqual(['m0', 'm2']);
    expect(delivered[0]!.orderingKey).toBe('a');
    await delivered[0]!.nack(0);
    expect(delivered.map((d) => d.envelope.id)).toEqual(['m0', 'm2', 'm0']);
    await delivered[2]!.ack();
    expect(delivered.map((d) => d.envelope.id)).toEqual(['m0', 'm2', 'm0', 'm1']);
  });

  it('holds a delayed record until it is due', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const { consumer, delivered } = await setup();
      consumer.listener.onBatch({ topic: 't', partition: 0, records: [record(0, undefined, 500), record(1)] });
      expect(delivered.map((d) => d.envelope.id)).toEqual(['m1']);
      await vi.advanceTimersByTimeAsync(600);
      expect(delivered.map((d) => d.envelope.id)).toEqual(['m1', 'm0']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a rebalance drops what is held; settles of dropped deliveries commit nothing', async () => {
    const { consumer, delivered, flush } = await setup();
    consumer.listener.onBatch({ topic: 't', partition: 0, records: [record(0), record(1)] });
    consumer.listener.onAssignment({ t: [0] });
    await delivered[1]!.ack();
    await delivered[0]!.ack();
    await flush();
    expect(consumer.commits).toHaveLength(0);
    // the group refetches from the committed offset: the same records come again
    consumer.listener.onBatch({ topic: 't', partition: 0, records: [record(0), record(1)] });
    expect(delivered).toHaveLength(4);
  });

  it('holds the fetch loop when too much is buffered and lets it go on when half drained', async () => {
    const { consumer, delivered } = await setup();
    expect(consumer.listener.onBatch({ topic: 't', partition: 0, records: [record(0)] })).toBeUndefined();
    const room = consumer.listener.onBatch({ topic: 't', partition: 0, records: [1, 2, 3].map((o) => record(o)) });
    expect(room).toBeInstanceOf(Promise);
    let released = false;
    void room!.then(() => (released = true));
    await delivered[0]!.ack();
    await Promise.resolve();
    expect(released).toBe(false); // 3 of 4 still held
    await delivered[1]!.ack();
    await Promise.resolve();
    expect(released).toBe(true); // 2 = half the bound
    expect(consumer.paused).toBe(false); // never kafkajs' pause (it stalls a fetch round)
  });

  it('a rebalance or close releases a held fetch loop', async () => {
    const { consumer, sub } = await setup();
    const room = consumer.listener.onBatch({ topic: 't', partition: 0, records: [0, 1, 2, 3].map((o) => record(o)) });
    consumer.listener.onAssignment({ t: [0] });
    await room; // resolves: everything held was dropped
    const again = consumer.listener.onBatch({ topic: 't', partition: 0, records: [0, 1, 2, 3].map((o) => record(o)) });
    await sub.close();
    await again;
  });

  it('skips records it already holds when the client fetches them again', async () => {
    const { consumer, delivered } = await setup();
    consumer.listener.onBatch({ topic: 't', partition: 0, records: [record(0), record(1)] });
    consumer.listener.onBatch({ topic: 't', partition: 0, records: [record(1), record(2)] });
    expect(delivered.map((d) => d.envelope.id)).toEqual(['m0', 'm1', 'm2']);
  });

  it('close commits what was acked, gives the rest back, and refuses later settles with CLOSED', async () => {
    const { consumer, sub, delivered } = await setup();
    consumer.listener.onBatch({ topic: 't', partition: 0, records: [record(0), record(1)] });
    await delivered[0]!.ack();
    await sub.close();
    expect(consumer.committed(0)).toBe('1');
    expect(consumer.disconnected).toBe(true);
    const err = await delivered[1]!.ack().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MqError);
    expect((err as MqError).code).toBe('CLOSED');
    expect(consumer.committed(0)).toBe('1');
  });

  it("core's pause holds records back (not the fetch) and resume hands them over in order", async () => {
    const { consumer, sub, delivered } = await setup({}, { maxBufferedMessages: 100 });
    sub.pause();
    consumer.listener.onBatch({ topic: 't', partition: 0, records: [record(0), record(1), record(2)] });
    expect(delivered).toHaveLength(0);
    expect(consumer.paused).toBe(false);
    sub.resume();
    await Promise.resolve();
    expect(delivered.map((d) => d.envelope.id)).toEqual(['m0', 'm1', 'm2']);
  });

  it('stops handing over as soon as core pauses from inside deliver()', async () => {
    const consumer = new ScriptedConsumer();
    const seam = { consumer: () => consumer, classify: classifyKafkaError } as unknown as KafkaClientSeam;
    const delivered: DriverDelivery[] = [];
    let sub!: KafkaSubscription;
    sub = new KafkaSubscription(
      seam,
      { topic: 't', group: 'g', maxInFlight: 2, ordered: false, maxAttempts: 5, deadLetterTopic: 't-dlq', options: {} },
      {
        deliver: (d) => {
          delivered.push(d);
          if (delivered.length % 2 === 0) sub.pause(); // like core when its queue is full
        },
        error: () => {},
      },
      { groupId: 'g.t', fromBeginning: true, sessionTimeout: 1, heartbeatInterval: 1, maxWaitTimeInMs: 1, maxBufferedMessages: 100, joinTimeoutMs: 100, commitIntervalMs: 0 },
      silent,
      () => {},
    );
    await sub.start();
    consumer.listener.onBatch({ topic: 't', partition: 0, records: [0, 1, 2, 3, 4].map((o) => record(o)) });
    expect(delivered).toHaveLength(2);
    sub.resume();
    await Promise.resolve();
    expect(delivered.map((d) => d.envelope.id)).toEqual(['m0', 'm1', 'm2', 'm3']);
    sub.resume();
    await Promise.resolve();
    expect(delivered).toHaveLength(5);
  });

  it('an undecodable record is reported and skipped without holding the commit back', async () => {
    const errors: MqError[] = [];
    const consumer = new ScriptedConsumer();
    const seam = { consumer: () => consumer, classify: classifyKafkaError } as unknown as KafkaClientSeam;
    const delivered: DriverDelivery[] = [];
    const sub = new KafkaSubscription(
      seam,
      { topic: 't', group: 'g', maxInFlight: 2, ordered: false, maxAttempts: 5, deadLetterTopic: 't-dlq', options: {} },
      { deliver: (d) => delivered.push(d), error: (e) => errors.push(e) },
      { groupId: 'g.t', fromBeginning: true, sessionTimeout: 1, heartbeatInterval: 1, maxWaitTimeInMs: 1, maxBufferedMessages: 100, joinTimeoutMs: 100, commitIntervalMs: 0 },
      silent,
      () => {},
    );
    await sub.start();
    const bad = { ...record(0), get timestamp(): string { throw new Error('corrupt'); } };
    consumer.listener.onBatch({ topic: 't', partition: 0, records: [bad, record(1)] });
    expect(errors.map((e) => e.code)).toEqual(['INTERNAL']);
    expect(delivered.map((d) => d.envelope.id)).toEqual(['m1']);
    await delivered[0]!.ack();
    await new Promise((r) => setImmediate(r));
    expect(consumer.committed(0)).toBe('2');
  });

  it('commitIntervalMs: acks of one window share one commit; close flushes a pending one', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { consumer, sub, delivered } = await setup({}, { commitIntervalMs: 50, maxBufferedMessages: 100 });
      consumer.listener.onBatch({ topic: 't', partition: 0, records: [0, 1, 2].map((o) => record(o)) });
      consumer.listener.onBatch({ topic: 't', partition: 1, records: [record(0)] });
      await delivered[0]!.ack();
      await delivered[1]!.ack();
      await delivered[3]!.ack();
      await vi.advanceTimersByTimeAsync(49);
      expect(consumer.commits).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(1);
      expect(consumer.commits).toEqual([{ topic: 't', partitions: [{ partition: 0, offset: '2' }, { partition: 1, offset: '1' }] }]);
      await delivered[2]!.ack();
      await sub.close(); // before the window ends
      expect(consumer.committed(0)).toBe('3');
      expect(consumer.commits).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });
});
