/**
 * The group member over @platformatic/kafka against a scripted library consumer: what the seam adds
 * at the library's edges (attempt-log metadata in OffsetCommit requests, records handed over per
 * fetch answer and partition, backpressure on the next fetch request, answers of fetches sent
 * before an assignment dropped, positions reset on assignment). The real library runs in the
 * integration suites (MQKIT_KAFKA_CLIENT=platformatic).
 */
import { EventEmitter } from 'node:events';
import { kGetApi } from '@platformatic/kafka';
import { describe, expect, it, vi } from 'vitest';
import { parseKafkaUrl } from '../options.ts';
import type { FetchedBatch } from './seam.ts';

type Callback = (err: Error | null, value?: unknown) => void;
interface CommitTopic {
  name: string;
  partitions: Array<{ partitionIndex: number; committedOffset: bigint; committedMetadata?: string | null }>;
}

const fakes: FakeConsumer[] = [];

class FakeStream extends EventEmitter {
  readonly offsetsToFetch = new Map<string, bigint>();
  pause() {
    return this;
  }
  resume() {
    return this;
  }
  async close() {}
}

class FakeConsumer extends EventEmitter {
  assignments: Array<{ topic: string; partitions: number[] }> | null = [{ topic: 't', partitions: [0, 1] }];
  memberId: string | null = 'member-1';
  readonly fetches: Callback[] = [];
  sentTopics: CommitTopic[] | undefined;
  readonly stream = new FakeStream();
  constructor() {
    super();
    fakes.push(this);
  }
  fetch(_options: unknown, callback: Callback) {
    this.fetches.push(callback);
  }
  [kGetApi](name: string, callback: Callback) {
    callback(null, (_c: unknown, _g: string, _e: number, _m: string, _i: unknown, topics: CommitTopic[], done: Callback) => {
      if (name === 'OffsetCommit') this.sentTopics = structuredClone(topics);
      done(null);
    });
  }
  /** Like the library: committedMetadata null, sent through the member's own OffsetCommit API. */
  commit({ offsets }: { offsets: Array<{ topic: string; partition: number; offset: bigint }> }) {
    const topics: CommitTopic[] = [{ name: 't', partitions: offsets.map((o) => ({ partitionIndex: o.partition, committedOffset: o.offset, committedMetadata: null })) }];
    return new Promise<void>((resolve, reject) => {
      this[kGetApi]('OffsetCommit', (err, api) => {
        if (err) return reject(err);
        (api as (...args: unknown[]) => void)(null, 'g', 1, 'member-1', null, topics, (e: Error | null) => (e ? reject(e) : resolve()));
      });
    });
  }
  async consume() {
    this.emit('consumer:group:join', {});
    return this.stream;
  }
  async close() {}
}

// Not hoisted (vi.doMock): the fake needs the real module's kGetApi symbol.
vi.doMock('@platformatic/kafka', async (importOriginal) => ({ ...(await importOriginal<object>()), Consumer: FakeConsumer }));

const { createPlatformaticSeam } = await import('./platformatic.ts');

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const message = (partition: number, offset: number) => ({
  topic: 't',
  partition,
  offset: BigInt(offset),
  key: Buffer.from('k'),
  value: Buffer.from('v'),
  headerEntries: [[Buffer.from('x-mqkit-id'), Buffer.from(`id-${offset}`)]],
  timestamp: 1_700_000_000_000n,
});

async function member() {
  const seam = createPlatformaticSeam(parseKafkaUrl('kafka://127.0.0.1:9092?client=platformatic', {}), silent);
  const consumer = seam.consumer({ groupId: 'g', topic: 't', fromBeginning: true, sessionTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 100 });
  const batches: FetchedBatch[] = [];
  const assignments: Array<Readonly<Record<string, readonly number[]>>> = [];
  let room: Promise<void> | undefined;
  await consumer.start({
    onBatch: (b) => {
      batches.push(b);
      return room;
    },
    onAssignment: (a) => assignments.push(a),
    onCrash: () => {},
  });
  const fake = fakes.at(-1)!;
  /** The stream's side of one fetch: asks the (wrapped) consumer, pushes the answer's records. */
  const fetch = (records: ReturnType<typeof message>[]) => {
    const answered = vi.fn();
    fake.fetch({}, (err, response) => {
      answered(response);
      if (!err && (response as { responses: unknown[] }).responses.length > 0) for (const r of records) fake.stream.emit('data', r);
    });
    return { answered, reply: () => fake.fetches.at(-1)!(null, { responses: [records] }) };
  };
  return { consumer, fake, batches, assignments, fetch, setRoom: (p: Promise<void> | undefined): void => {
      room = p;
    },
  };
}

describe('the @platformatic/kafka group member', () => {
  it('hands the records of one fetch answer over per partition, in the seam record shape', async () => {
    const m = await member();
    expect(m.assignments).toEqual([{ t: [0, 1] }]);
    m.fetch([message(0, 5), message(1, 7), message(0, 6)]).reply();
    expect(m.batches.map((b) => [b.partition, b.records.map((r) => r.offset)])).toEqual([
      [0, ['5', '6']],
      [1, ['7']],
    ]);
    expect(m.batches[0]!.records[0]).toEqual({ offset: '5', key: Buffer.from('k'), value: Buffer.from('v'), headers: { 'x-mqkit-id': Buffer.from('id-5') }, timestamp: '1700000000000' });
    await m.consumer.disconnect();
  });

  it('commits carry their metadata (the library itself sends none)', async () => {
    const m = await member();
    await m.consumer.commit({ topic: 't', partitions: [{ partition: 0, offset: '12', metadata: 'log-0' }, { partition: 1, offset: '3' }] });
    expect(m.fake.sentTopics).toEqual([
      {
        name: 't',
        partitions: [
          { partitionIndex: 0, committedOffset: 12n, committedMetadata: 'log-0' },
          { partitionIndex: 1, committedOffset: 3n, committedMetadata: null },
        ],
      },
    ]);
    await m.consumer.disconnect();
  });

  it('while the listener has no room, the next fetch request waits for it', async () => {
    const m = await member();
    let release!: () => void;
    m.setRoom(new Promise<void>((r) => (release = r)));
    m.fetch([message(0, 1)]).reply();
    m.setRoom(undefined);
    m.fetch([message(0, 2)]);
    await new Promise((r) => setTimeout(r, 20));
    expect(m.fake.fetches).toHaveLength(1);
    release();
    await new Promise((r) => setTimeout(r, 0));
    expect(m.fake.fetches).toHaveLength(2);
    await m.consumer.disconnect();
  });

  it('a reassignment resets the fetch positions and drops the answer of a fetch sent before it', async () => {
    const m = await member();
    m.fake.stream.offsetsToFetch.set('t:0', 40n).set('t:1', 50n).set('other:0', 9n);
    const before = m.fetch([message(0, 40)]);
    m.fake.assignments = [{ topic: 't', partitions: [1] }];
    m.fake.emit('consumer:group:join', {});
    expect(m.assignments.at(-1)).toEqual({ t: [1] });
    // The stream refreshes them from the committed offsets (and the fallback) on the join.
    expect([...m.fake.stream.offsetsToFetch.keys()]).toEqual(['other:0']);
    before.reply();
    expect(before.answered).toHaveBeenCalledWith({ responses: [] });
    expect(m.batches).toEqual([]);
    await m.consumer.disconnect();
  });
});
