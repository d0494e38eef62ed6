/**
 * The receiver's bookkeeping against a scripted consumer (the seam, not a broker), driven through
 * core's PullSubscription as in production: contiguous commits, ordered lanes, nack redelivery
 * with tracked attempts, rebalance drops, the receive budget, close.
 */
import { AttemptLedger, MqError, PullSubscription, type DriverDelivery, type SubscriptionSpec } from '@mqkit/core/driver';
import { describe, expect, it, vi } from 'vitest';
import { classifyKafkaError } from './client/kafkajs-errors.ts';
import type { CommittedOffset, ConsumerListener, ConsumerSeam, FetchedRecord, KafkaClientSeam, TopicOffsets } from './client/seam.ts';
import { toRecord } from './records.ts';
import { KafkaSubscription, type KafkaSubscriptionSettings } from './subscription.ts';

const silent = { debug() {}, info() {}, warn() {}, error() {} };

class ScriptedConsumer implements ConsumerSeam {
  listener!: ConsumerListener;
  commits: TopicOffsets[] = [];
  paused = false;
  disconnected = false;
  /** Commits wait for this while set (a slow coordinator). */
  hold: Promise<void> | undefined;
  /** What the group has committed (offset + metadata per partition), shared like the broker's. */
  readonly stored: Map<number, CommittedOffset>;
  constructor(stored = new Map<number, CommittedOffset>()) {
    this.stored = stored;
  }
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
    if (this.hold) await this.hold;
    this.commits.push(offsets);
    for (const p of offsets.partitions) this.stored.set(p.partition, { partition: p.partition, offset: p.offset, metadata: p.metadata ?? null });
  }
  async committed() {
    return [...this.stored.values()];
  }
  async disconnect() {
    this.disconnected = true;
  }
  /** The last position committed for `partition`. */
  position(partition: number): string | undefined {
    return this.commits.flatMap((c) => c.partitions).filter((p) => p.partition === partition).at(-1)?.offset;
  }
}

function record(offset: number, key?: string, delayMs?: number): FetchedRecord {
  const r = toRecord({ id: `m${offset}`, topic: 't', key, headers: {}, body: new Uint8Array([offset]), timestamp: 1, delayMs });
  return { ...r, offset: String(offset) };
}

const records = (...offsets: number[]) => offsets.map((o) => record(o));

/** Lets the log read, recording commits and zero-delay redeliveries run (microtasks and one macrotask). */
const flush = () => new Promise((r) => setImmediate(r));

async function setup(
  spec: Partial<SubscriptionSpec> = {},
  settings: Partial<KafkaSubscriptionSettings> = {},
  onDeliver?: (d: DriverDelivery, count: number) => void,
  consumer = new ScriptedConsumer(),
) {
  const seam = { consumer: () => consumer, classify: classifyKafkaError } as unknown as KafkaClientSeam;
  const delivered: DriverDelivery[] = [];
  const errors: MqError[] = [];
  const logged: unknown[] = [];
  const fullSpec: SubscriptionSpec = { topic: 't', group: 'g', maxInFlight: 16, ordered: false, maxAttempts: 5, deadLetterTopic: 't-dlq', options: {}, ...spec };
  const receiver = new KafkaSubscription(
    seam,
    fullSpec,
    'kafka://test\u0000g.t',
    { groupId: 'g.t', fromBeginning: true, sessionTimeout: 1, heartbeatInterval: 1, maxWaitTimeInMs: 1, maxBufferedMessages: 4, joinTimeoutMs: 100, commitIntervalMs: 0, ...settings },
    { ...silent, error: (obj: unknown) => logged.push(obj) },
    () => {},
  );
  await receiver.start();
  // A new ledger per setup: each one is a process of its own (a crash loses what core knew).
  const sub = new PullSubscription(receiver, {
    spec: fullSpec,
    sink: {
      deliver: (d) => {
        delivered.push(d);
        onDeliver?.(d, delivered.length);
      },
      error: (e) => errors.push(e),
    },
    logger: silent,
    ledger: new AttemptLedger(),
  }).start();
  await flush(); // the assigned partitions' logs are read
  /** A fetched batch, handed over once recorded as taken. */
  const feed = async (partition: number, batch: FetchedRecord[]) => {
    const room = consumer.listener.onBatch({ topic: 't', partition, records: batch });
    await flush();
    return { room }; // wrapped: an async function would wait for the promise itself
  };
  return { consumer, receiver, sub, delivered, errors, logged, feed, ids: () => delivered.map((d) => d.envelope.id) };
}

/** The receiver alone, driven by the test as core would. */
async function bare(consumer = new ScriptedConsumer()) {
  const seam = { consumer: () => consumer, classify: classifyKafkaError } as unknown as KafkaClientSeam;
  const spec: SubscriptionSpec = { topic: 't', group: 'g', maxInFlight: 16, ordered: false, maxAttempts: 5, deadLetterTopic: 't-dlq', options: {} };
  const settings = { groupId: 'g.t', fromBeginning: true, sessionTimeout: 1, heartbeatInterval: 1, maxWaitTimeInMs: 1, maxBufferedMessages: 100, joinTimeoutMs: 100, commitIntervalMs: 0 };
  const receiver = new KafkaSubscription(seam, spec, 'scope', settings, silent, () => {});
  await receiver.start();
  await flush();
  return { consumer, receiver };
}

describe('KafkaSubscription', () => {
  it('commits each partition contiguously, never past an unfinished message', async () => {
    const { consumer, delivered, feed, ids } = await setup();
    await feed(0, records(0, 1, 2));
    expect(ids()).toEqual(['m0', 'm1', 'm2']);
    expect(delivered[0]!.meta).toEqual({ partition: '0', offset: '0' });
    expect(consumer.position(0)).toBe('0'); // the unchanged position, recording what was taken
    await delivered[2]!.ack();
    await delivered[1]!.ack();
    await flush();
    expect(consumer.position(0)).toBe('0');
    await delivered[0]!.ack();
    await flush();
    expect(consumer.position(0)).toBe('3');
  });

  it('nack holds the record uncommitted and redelivers it with attempt + 1', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const { consumer, delivered, feed } = await setup();
      await feed(1, records(5, 6));
      await delivered[0]!.nack(1_000);
      await delivered[1]!.ack();
      expect(delivered).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(999);
      expect(delivered).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(1);
      expect(delivered).toHaveLength(3);
      expect(delivered[2]!.envelope.id).toBe('m5');
      expect(delivered[2]!.attempt).toBe(2);
      expect(consumer.position(1)).toBe('5');
      await delivered[2]!.ack();
      await flush();
      expect(consumer.position(1)).toBe('7');
    } finally {
      vi.useRealTimers();
    }
  });

  it('nack(0) redelivers on a later macrotask: an always-nacking handler does not starve timers (#16 defect 1)', async () => {
    const LIMIT = 200_000;
    const { delivered, consumer } = await setup({ maxAttempts: Number.POSITIVE_INFINITY }, { maxBufferedMessages: 100 }, (d, count) => {
      // like core running a handler that nacks at once (a microtask later); acks after LIMIT
      queueMicrotask(() => void (count >= LIMIT ? d.ack() : d.nack(0)));
    });
    let ticks = 0;
    const interval = setInterval(() => (ticks += 1), 5);
    void consumer.listener.onBatch({ topic: 't', partition: 0, records: records(0, 1, 2, 3, 4) });
    const seen = await new Promise<{ deliveries: number; ticks: number }>((resolve) =>
      setTimeout(() => resolve({ deliveries: delivered.length, ticks }), 200),
    );
    clearInterval(interval);
    // The timers ran while the handler kept nacking (on main: not before all LIMIT deliveries).
    expect(seen.deliveries).toBeLessThan(LIMIT);
    expect(seen.deliveries).toBeGreaterThan(100);
    expect(seen.ticks).toBeGreaterThan(5);
    expect(delivered.at(-1)!.attempt).toBeGreaterThan(1);
  });

  it('ordered: hands out one message per key; a nacked one comes back before later ones of its key', async () => {
    const { delivered, feed, ids } = await setup({ ordered: true });
    await feed(0, [record(0, 'a'), record(1, 'a'), record(2, 'b')]);
    expect(ids()).toEqual(['m0', 'm2']);
    expect(delivered[0]!.orderingKey).toBe('a');
    await delivered[0]!.nack(0);
    expect(ids()).toEqual(['m0', 'm2']); // not synchronously
    await flush();
    expect(ids()).toEqual(['m0', 'm2', 'm0']);
    await delivered[2]!.ack();
    expect(ids()).toEqual(['m0', 'm2', 'm0', 'm1']);
  });

  it('holds a delayed record until it is due', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const { feed, ids } = await setup();
      await feed(0, [record(0, undefined, 500), record(1)]);
      expect(ids()).toEqual(['m1']);
      await vi.advanceTimersByTimeAsync(600);
      expect(ids()).toEqual(['m1', 'm0']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a rebalance drops what is held; settles of dropped deliveries commit nothing', async () => {
    const { consumer, delivered, feed } = await setup();
    await feed(0, records(0, 1, 2));
    const commits = consumer.commits.length;
    consumer.listener.onAssignment({ t: [0] });
    await delivered[1]!.ack();
    await delivered[2]!.nack(0);
    await flush();
    expect(consumer.commits.slice(commits).flatMap((c) => c.partitions.map((p) => p.offset))).toEqual(['0']);
    // The group refetches from the committed offset: the same records come again, one at a time
    // (taken by a lost assignment, they are suspects and count an attempt). m0, still being
    // handled, is not handed over again: core settles its new copy when its handler does. m1,
    // acked by this process after the drop, is skipped as done (the receiver's #ackedBeforeDrop;
    // core no longer remembers acks for Kafka). m2 comes back at attempt 2.
    await feed(0, records(0, 1, 2));
    expect(delivered).toHaveLength(3);
    await delivered[0]!.ack();
    for (let i = 0; i < 10; i += 1) await flush();
    expect(delivered.slice(3).map((d) => [d.envelope.id, d.attempt])).toEqual([['m2', 2]]);
    expect(consumer.position(0)).toBe('2');
    await delivered[3]!.ack();
    await flush();
    expect(consumer.position(0)).toBe('3');
  });

  it('holds the fetch loop when too much is buffered and lets it go on when half drained', async () => {
    const { consumer, delivered, feed } = await setup();
    expect((await feed(0, records(0))).room).toBeUndefined();
    const { room } = await feed(0, records(1, 2, 3));
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
    const { consumer, sub, feed } = await setup();
    const { room } = await feed(0, records(0, 1, 2, 3));
    consumer.listener.onAssignment({ t: [0] });
    await room; // resolves: everything held was dropped
    await flush();
    const { room: again } = await feed(0, records(0, 1, 2, 3));
    await sub.close();
    await again;
  });

  it('skips records it already holds when the client fetches them again', async () => {
    const { feed, ids } = await setup();
    await feed(0, records(0, 1));
    await feed(0, records(1, 2));
    expect(ids()).toEqual(['m0', 'm1', 'm2']);
  });

  it('close commits what was acked, gives the rest back, and refuses later settles with CLOSED', async () => {
    const { consumer, sub, delivered, feed } = await setup();
    await feed(0, records(0, 1));
    await delivered[0]!.ack();
    await sub.close();
    expect(consumer.position(0)).toBe('1');
    expect(consumer.disconnected).toBe(true);
    const err = await delivered[1]!.ack().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MqError);
    expect((err as MqError).code).toBe('CLOSED');
    expect(consumer.position(0)).toBe('1');
  });

  it("core's budget (maxInFlight) bounds the hand-over, never the fetch; records wait here in order", async () => {
    const { consumer, sub, delivered, feed, ids } = await setup({ maxInFlight: 2 }, { maxBufferedMessages: 100 });
    expect((await feed(0, records(0, 1, 2, 3, 4))).room).toBeUndefined();
    expect(ids()).toEqual(['m0', 'm1']);
    expect(consumer.paused).toBe(false);
    await delivered[0]!.ack();
    await flush();
    expect(ids()).toEqual(['m0', 'm1', 'm2']);
    sub.pause(); // core's queue is full: no receive() until resume
    await delivered[1]!.ack();
    await flush();
    expect(ids()).toEqual(['m0', 'm1', 'm2']);
    sub.resume();
    await flush();
    expect(ids()).toEqual(['m0', 'm1', 'm2', 'm3']);
  });

  it('receive() returns at most max, waits while nothing is due, and resolves [] on abort', async () => {
    const { consumer, receiver } = await bare();
    const signal = new AbortController().signal;
    const waiting = receiver.receive(2, signal);
    void consumer.listener.onBatch({ topic: 't', partition: 0, records: records(0, 1, 2) });
    const first = await waiting;
    expect(first.map((m) => [m.id, m.deliveryCount, m.envelope.id])).toEqual([['0:0', 1, 'm0'], ['0:1', 1, 'm1']]);
    expect((await receiver.receive(10, signal)).map((m) => m.id)).toEqual(['0:2']);
    const abort = new AbortController();
    const idle = receiver.receive(10, abort.signal);
    abort.abort();
    expect(await idle).toEqual([]);
    // A give-back (no handler saw it) is no attempt: the same attempt comes out of a later receive.
    await receiver.release([first[1]!], 0);
    expect((await receiver.receive(10, signal)).map((m) => [m.id, m.deliveryCount])).toEqual([['0:1', 1]]);
    // A nack is one: attempt 2, once a commit recorded it.
    await receiver.nack([first[0]!], 0);
    expect((await receiver.receive(10, signal)).map((m) => [m.id, m.deliveryCount])).toEqual([['0:0', 2]]);
    await receiver.close();
    await expect(receiver.receive(1, signal)).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(receiver.ack(first)).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('a released record counts no attempt in the log of a graceful close; a nacked one does', async () => {
    const stored = new Map<number, CommittedOffset>();
    const { consumer, receiver } = await bare(new ScriptedConsumer(stored));
    void consumer.listener.onBatch({ topic: 't', partition: 0, records: records(0, 1) });
    const got = await receiver.receive(10, new AbortController().signal);
    expect(got).toHaveLength(2);
    await receiver.nack([got[0]!], 0); // a handler saw m0 (as core does on close for an abandoned one)
    await receiver.release([got[1]!], 0); // m1 never reached a handler
    await receiver.close();
    const next = await setup({}, { maxBufferedMessages: 100 }, undefined, new ScriptedConsumer(stored));
    await next.feed(0, records(0, 1));
    for (let i = 0; i < 5; i += 1) await flush();
    expect(next.delivered.map((d) => [d.envelope.id, d.attempt])).toEqual([['m1', 1], ['m0', 2]]);
  });

  it('a consumer crash is reported through the next receive (core logs it and goes on)', async () => {
    const { consumer, errors, feed, ids } = await setup();
    consumer.listener.onCrash(new Error('boom'), true);
    await new Promise((r) => setTimeout(r, 20));
    expect(errors).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 400)); // core's receive backoff
    await feed(0, records(0));
    expect(ids()).toEqual(['m0']);
  });

  it('an undecodable record is reported and skipped without holding the commit back', async () => {
    const { consumer, delivered, logged, feed, ids } = await setup({}, { maxBufferedMessages: 100 });
    const bad = { ...record(0), get timestamp(): string { throw new Error('corrupt'); } };
    await feed(0, [bad, record(1)]);
    expect(logged.map((l) => (l as { err: MqError }).err.code)).toEqual(['INTERNAL']);
    expect(ids()).toEqual(['m1']);
    await delivered[0]!.ack();
    await flush();
    expect(consumer.position(0)).toBe('2');
  });

  it('commitIntervalMs: acks of one window share one commit; close flushes a pending one', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { consumer, sub, delivered, feed } = await setup({}, { commitIntervalMs: 50, maxBufferedMessages: 100 });
      await feed(0, records(0, 1, 2));
      await feed(1, records(0));
      const before = consumer.commits.length; // the commits recording what was taken
      await delivered[0]!.ack();
      await delivered[1]!.ack();
      await delivered[3]!.ack();
      await vi.advanceTimersByTimeAsync(49);
      expect(consumer.commits).toHaveLength(before);
      await vi.advanceTimersByTimeAsync(1);
      expect(consumer.commits).toHaveLength(before + 1);
      expect(consumer.commits.at(-1)!.partitions.map(({ partition, offset }) => ({ partition, offset }))).toEqual([
        { partition: 0, offset: '2' },
        { partition: 1, offset: '1' },
      ]);
      await delivered[2]!.ack();
      await sub.close(); // before the window ends
      expect(consumer.position(0)).toBe('3');
      expect(consumer.commits).toHaveLength(before + 2);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('KafkaSubscription attempts across owners (#16 defect 4)', () => {
  it('hands nothing over before a commit recorded it as taken', async () => {
    const consumer = new ScriptedConsumer();
    let release!: () => void;
    const { feed, delivered } = await setup({}, { maxBufferedMessages: 100 }, undefined, consumer);
    consumer.hold = new Promise<void>((r) => (release = r));
    await feed(0, records(0, 1));
    expect(delivered).toHaveLength(0);
    release();
    await flush();
    expect(delivered).toHaveLength(2);
    const meta = consumer.stored.get(0)!;
    expect(meta.offset).toBe('0');
    expect(meta.metadata).toMatch(/^mq2;/);
  });

  it('after a crash, the next owner counts one more attempt for every record taken and not acked; acked ones are not redelivered', async () => {
    const stored = new Map<number, CommittedOffset>();
    const first = await setup({}, { maxBufferedMessages: 100, lookAhead: 2 }, undefined, new ScriptedConsumer(stored));
    await first.feed(0, records(0, 1, 2, 3, 4, 5, 6, 7, 8, 9));
    expect(first.ids()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);
    await first.delivered[0]!.nack(0); // m0: attempt 2 next
    await first.delivered[2]!.ack(); // m2 acked, held behind m0
    await flush();
    expect(first.delivered.at(-1)!.attempt).toBe(2);
    // The process dies here (no close): m0 handed twice, m1 and m3..m9 once, m2 acked.
    // The next owner hands the suspects (every unacked record up to the recorded end 9 + the
    // look-ahead 2, so m10 too) over one at a time, each recorded alone: it gets m0, and m11 (past
    // the range, never taken) at attempt 1, and dies again while m0 runs.
    const second = await setup({}, { maxBufferedMessages: 100 }, undefined, new ScriptedConsumer(stored));
    await second.feed(0, records(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12));
    expect(second.delivered.map((d) => [d.envelope.id, d.attempt]).sort()).toEqual([['m0', 3], ['m12', 1]]);
    // A third owner: only m0 and m10 were handed over in between, so only they count again.
    const third = await setup({}, { maxBufferedMessages: 100 }, (d) => queueMicrotask(() => void d.ack()), new ScriptedConsumer(stored));
    await third.feed(0, records(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12));
    for (let i = 0; i < 30; i += 1) await flush();
    const attempts = Object.fromEntries(third.delivered.map((d) => [d.envelope.id, d.attempt]));
    // m0 counted at each crash; the other suspects once (never handed over since the first crash);
    // m12 (handed to the second owner unrecorded) and m11 (inside its look-ahead) once.
    expect(attempts).toEqual({ m0: 4, m1: 2, m3: 2, m4: 2, m5: 2, m6: 2, m7: 2, m8: 2, m9: 2, m10: 2, m11: 2, m12: 2 });
    expect(third.ids()).toEqual(['m0', 'm1', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9', 'm10', 'm11', 'm12']); // suspects in order
  });

  it('suspects go to core one at a time, each after a commit that records it alone', async () => {
    const stored = new Map<number, CommittedOffset>([[0, { partition: 0, offset: '0', metadata: 'mq1;2;0:1' }]]);
    const consumer = new ScriptedConsumer(stored);
    const { feed, delivered } = await setup({}, { maxBufferedMessages: 100 }, undefined, consumer);
    await feed(0, records(0, 1, 2));
    expect(delivered.map((d) => d.envelope.id)).toEqual(['m0']);
    expect(stored.get(0)!.metadata).toBe('mq2;3;1ku;0:2,1:1'); // m0 taken a 2nd time; m1, m2 still once; lag 2048 past m0 (base 36)
    await delivered[0]!.ack();
    await flush();
    expect(delivered.map((d) => d.envelope.id)).toEqual(['m0', 'm1']);
    expect(stored.get(0)).toMatchObject({ offset: '1', metadata: 'mq2;2;1kv;0:2,1:1' }); // m1 taken again, m2 not yet
  });

  it('a graceful close records exactly what was handed over: records only fetched come back at attempt 1', async () => {
    const stored = new Map<number, CommittedOffset>();
    const first = await setup({ maxInFlight: 2 }, { maxBufferedMessages: 100 }, undefined, new ScriptedConsumer(stored));
    await first.feed(0, records(0, 1, 2, 3)); // core's budget: two
    expect(first.ids()).toEqual(['m0', 'm1']);
    first.sub.pause();
    await first.delivered[0]!.ack();
    await first.sub.close(); // m1's handler is abandoned (hung past the deadline); m2, m3 never handed over
    const second = await setup({}, { maxBufferedMessages: 100 }, undefined, new ScriptedConsumer(stored));
    await second.feed(0, records(1, 2, 3));
    // m1 (a suspect) waits for its own record; the others need none.
    expect(second.delivered.map((d) => [d.envelope.id, d.attempt])).toEqual([['m2', 1], ['m3', 1], ['m1', 2]]);
    expect(stored.get(0)!.metadata).toMatch(/^mq2;[0-9a-z]+;[0-9a-z]+;/); // running again: not clean
  });

  it('ordered: recovered attempts keep per-key order (after a crash, a record waiting behind its key counts once, as a suspect)', async () => {
    const stored = new Map<number, CommittedOffset>();
    const first = await setup({ ordered: true }, { maxBufferedMessages: 100 }, undefined, new ScriptedConsumer(stored));
    await first.feed(0, [record(0, 'a'), record(1, 'a'), record(2, 'b')]);
    expect(first.ids()).toEqual(['m0', 'm2']);
    await first.delivered[1]!.ack();
    await flush();
    const second = await setup({ ordered: true }, { maxBufferedMessages: 100 }, undefined, new ScriptedConsumer(stored));
    await second.feed(0, [record(0, 'a'), record(1, 'a'), record(2, 'b')]);
    expect(second.delivered.map((d) => [d.envelope.id, d.attempt])).toEqual([['m0', 2]]);
    await second.delivered[0]!.ack();
    await flush();
    expect(second.delivered.map((d) => [d.envelope.id, d.attempt])).toEqual([['m0', 2], ['m1', 2]]);
  });

  it('first deliveries go to core without waiting for a commit, up to the look-ahead past the recorded end; after a crash all of those are suspects', async () => {
    const stored = new Map<number, CommittedOffset>();
    const consumer = new ScriptedConsumer(stored);
    const first = await setup({}, { maxBufferedMessages: 100, lookAhead: 2 }, undefined, consumer);
    await first.feed(0, records(0, 1)); // the first commit of an owner lands before any hand-over
    expect(first.ids()).toEqual(['m0', 'm1']);
    expect(stored.get(0)!.metadata).toBe('mq2;2;2;0:1');
    consumer.hold = new Promise<void>(() => {}); // the coordinator stops answering
    await first.feed(0, records(2, 3, 4, 5));
    expect(first.ids()).toEqual(['m0', 'm1', 'm2', 'm3']); // up to 1 + 2 without a commit; m4, m5 wait
    // The process dies: m2, m3 were handed over unrecorded, still within 1 + 2.
    const second = await setup({}, { maxBufferedMessages: 100 }, (d) => queueMicrotask(() => void d.ack()), new ScriptedConsumer(stored));
    await second.feed(0, records(0, 1, 2, 3, 4, 5));
    for (let i = 0; i < 20; i += 1) await flush();
    expect(second.delivered.map((d) => [d.envelope.id, d.attempt])).toEqual([
      ['m4', 1], // past the range: never taken, not held back by the suspects
      ['m5', 1],
      ['m0', 2],
      ['m1', 2],
      ['m2', 2], // never recorded: counts as taken once
      ['m3', 2],
    ]);
  });

  it('repeated crashes on one suspect do not widen the suspect range', async () => {
    const stored = new Map<number, CommittedOffset>();
    const first = await setup({}, { maxBufferedMessages: 100, lookAhead: 2 }, undefined, new ScriptedConsumer(stored));
    await first.feed(0, records(0, 1)); // recorded: window [0, 1], lag 2: range [0, 3]
    // Crash. The second owner (only the suspects fetched yet) hands m0 and crashes on it.
    const second = await setup({}, { maxBufferedMessages: 100, lookAhead: 2 }, undefined, new ScriptedConsumer(stored));
    await second.feed(0, records(0, 1, 2, 3));
    expect(second.delivered.map((d) => [d.envelope.id, d.attempt])).toEqual([['m0', 2]]);
    // Its log still covers [0, 3] (carried), but its own look-ahead only reaches 0 + 2: the range
    // stays [0, 3] instead of growing by the look-ahead at every crash.
    const third = await setup({}, { maxBufferedMessages: 100, lookAhead: 2 }, (d) => queueMicrotask(() => void d.ack()), new ScriptedConsumer(stored));
    await third.feed(0, records(0, 1, 2, 3, 4, 5, 6));
    for (let i = 0; i < 20; i += 1) await flush();
    const attempts = Object.fromEntries(third.delivered.map((d) => [d.envelope.id, d.attempt]));
    expect(attempts).toEqual({ m0: 3, m1: 2, m2: 2, m3: 2, m4: 1, m5: 1, m6: 1 });
  });

  it('a redelivery waits for the commit recording its attempt', async () => {
    const consumer = new ScriptedConsumer();
    const { feed, delivered } = await setup({}, { maxBufferedMessages: 100 }, undefined, consumer);
    await feed(0, records(0));
    let release!: () => void;
    consumer.hold = new Promise<void>((r) => (release = r));
    await delivered[0]!.nack(0);
    await flush();
    await flush();
    expect(delivered).toHaveLength(1);
    release();
    await flush();
    await flush();
    expect(delivered.map((d) => d.attempt)).toEqual([1, 2]);
    expect(consumer.stored.get(0)!.metadata).toBe('mq2;1;1kw;0:2');
  });

  it('ignores offset metadata it cannot read (another tool, another version)', async () => {
    const stored = new Map<number, CommittedOffset>([[0, { partition: 0, offset: '3', metadata: 'mq1;9;0:3;unknown-suffix' }]]);
    const { feed, delivered } = await setup({}, { maxBufferedMessages: 100 }, undefined, new ScriptedConsumer(stored));
    await feed(0, records(3, 4));
    expect(delivered.map((d) => d.attempt)).toEqual([1, 1]);
  });
});
