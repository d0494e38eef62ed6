/**
 * Operations (`mqkit dlq`, `mqkit lag`) on Kafka, with a kafkajs client of their own (whatever
 * `client` the driver uses: these are admin calls and one short-lived reader).
 *
 * A dead-letter topic D is the Kafka topic D. Reading it (`peek`) joins a throwaway consumer
 * group that commits nothing, reads from each partition's start up to the high watermarks seen
 * at the start, and is deleted afterwards; nothing on the topic changes. A log cannot lose one
 * record in its middle: removing is DeleteRecords up to an offset, so only the oldest records of
 * a partition can go, without a gap (capability `prefix`; the CLI refuses a filtered replay).
 * A group's lag per partition is the high watermark minus its committed offset (the start of the
 * log when it has none); mqkit's Kafka group for group G on topic T is `G.T` (nativeGroupId).
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Admin, type EachBatchPayload, type SASLOptions } from 'kafkajs';
import { MqError, type BacklogRow, type DriverOps, type MessageBatch, type OpsAdapter, type StoredMessage } from '@mqkit/core/driver';
import { classifyKafkaError } from './client/kafkajs-errors.ts';
import { nativeGroupId } from './driver.ts';
import { parseKafkaUrl, type KafkaSettings } from './options.ts';
import { fromRecord } from './records.ts';

/** Longest a read waits for its records (the group join included). */
const READ_TIMEOUT_MS = 60_000;

/** The Kafka adapter's operations, for the same URLs as {@link kafka}. */
export function ops(): OpsAdapter {
  return {
    schemes: ['kafka'],
    async create(url, options) {
      const settings = parseKafkaUrl(url, options);
      const kafka = new Kafka({
        clientId: `${settings.clientId}-ops`,
        brokers: [...settings.brokers],
        ssl: settings.ssl === false ? false : settings.ssl === true ? true : { ...settings.ssl },
        sasl: settings.sasl ? ({ mechanism: settings.sasl.mechanism, username: settings.sasl.username, password: settings.sasl.password } as SASLOptions) : undefined,
        connectionTimeout: settings.connectionTimeout,
        requestTimeout: settings.requestTimeout,
        retry: { retries: 2, initialRetryTime: 100, maxRetryTime: settings.maxRetryTime },
        logLevel: logLevel.NOTHING,
      });
      const admin = kafka.admin();
      try {
        await admin.connect();
      } catch (err) {
        throw classifyKafkaError(err, { operation: 'connecting' });
      }
      return new KafkaOps(kafka, admin, settings);
    },
  };
}

interface PartitionRange {
  partition: number;
  low: bigint;
  high: bigint;
}

class KafkaOps implements DriverOps {
  readonly name = 'kafka';
  readonly capabilities = { read: 'peek', remove: 'prefix', listTopics: true, listGroups: true } as const;
  readonly #kafka: Kafka;
  readonly #admin: Admin;

  constructor(kafka: Kafka, admin: Admin, _settings: KafkaSettings) {
    this.#kafka = kafka;
    this.#admin = admin;
  }

  async #run<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw classifyKafkaError(err, { operation });
    }
  }

  async listTopics(): Promise<readonly string[]> {
    return (await this.#run('listTopics', () => this.#admin.listTopics())).filter((t) => !t.startsWith('__'));
  }

  async #ranges(topic: string): Promise<PartitionRange[]> {
    if (!(await this.listTopics()).includes(topic)) throw new MqError('NOT_FOUND', `topic "${topic}" does not exist`, { details: { topic } });
    const offsets = await this.#run('fetchTopicOffsets', () => this.#admin.fetchTopicOffsets(topic));
    return offsets.map((p) => ({ partition: p.partition, low: BigInt(p.low), high: BigInt(p.high) })).sort((a, b) => a.partition - b.partition);
  }

  async depth(topic: string): Promise<number> {
    return (await this.#ranges(topic)).reduce((n, r) => n + Number(r.high - r.low), 0);
  }

  async read(topic: string, limit: number): Promise<MessageBatch> {
    const ranges = await this.#ranges(topic);
    const wanted = ranges.filter((r) => r.high > r.low);
    const found = new Map<number, Array<{ offset: bigint; message: StoredMessage }>>();
    if (wanted.length > 0) await this.#peek(topic, wanted, limit, found);
    // Oldest first per partition, partitions in order: any prefix of the list is, per partition,
    // a run from that partition's start (what DeleteRecords can remove).
    const positions = new Map<StoredMessage, { partition: number; offset: bigint }>();
    const messages: StoredMessage[] = [];
    let left = limit;
    for (const r of ranges) {
      for (const { offset, message } of (found.get(r.partition) ?? []).sort((a, b) => (a.offset < b.offset ? -1 : 1))) {
        if (left-- <= 0) break;
        messages.push(message);
        positions.set(message, { partition: r.partition, offset });
      }
    }
    const starts = new Map(ranges.map((r) => [r.partition, r.low]));
    return {
      messages,
      remove: async (some) => {
        const upTo = new Map<number, bigint>();
        for (const m of some) {
          const at = positions.get(m);
          if (!at) throw new MqError('INVALID_MESSAGE', 'remove: a message not read in this batch');
          const end = at.offset + 1n;
          if (end > (upTo.get(at.partition) ?? 0n)) upTo.set(at.partition, end);
        }
        // Only a run from the partition's current start: anything else would take records with it.
        for (const [partition, end] of upTo) {
          const count = some.filter((m) => positions.get(m)?.partition === partition).length;
          if (BigInt(count) !== end - (starts.get(partition) ?? 0n)) {
            throw new MqError('UNSUPPORTED', `kafka: cannot remove records of partition ${partition} out of order (a log is truncated from its start only)`);
          }
        }
        const partitions = [...upTo].map(([partition, offset]) => ({ partition, offset: offset.toString() }));
        if (partitions.length > 0) await this.#run('deleteTopicRecords', () => this.#admin.deleteTopicRecords({ topic, partitions }));
        for (const [partition, end] of upTo) starts.set(partition, end);
        for (const m of some) positions.delete(m);
      },
      release: async () => {},
    };
  }

  /** Reads each wanted partition from its start to the high watermark seen before (or `limit` records in all). */
  async #peek(topic: string, wanted: readonly PartitionRange[], limit: number, found: Map<number, Array<{ offset: bigint; message: StoredMessage }>>): Promise<void> {
    const groupId = `mqkit-ops-peek-${randomUUID()}`;
    const consumer = this.#kafka.consumer({ groupId, allowAutoTopicCreation: false, retry: { retries: 2 } });
    const done = new Set<number>();
    let total = 0;
    let finish!: () => void;
    let fail!: (err: unknown) => void;
    const finished = new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    const timer = setTimeout(() => fail(new MqError('TIMEOUT', `kafka: reading ${topic} did not finish within ${READ_TIMEOUT_MS} ms`)), READ_TIMEOUT_MS);
    try {
      await this.#run('reading', async () => {
        await consumer.connect();
        await consumer.subscribe({ topics: [topic], fromBeginning: true });
        consumer.on(consumer.events.CRASH, (e) => fail(e.payload.error));
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          eachBatch: async ({ batch }: EachBatchPayload) => {
            const range = wanted.find((r) => r.partition === batch.partition);
            if (!range || done.has(batch.partition)) return;
            const list = found.get(batch.partition) ?? [];
            found.set(batch.partition, list);
            for (const record of batch.messages) {
              const offset = BigInt(record.offset);
              if (offset >= range.high || total >= limit) break;
              if (offset < range.low) continue;
              list.push({ offset, message: { envelope: fromRecord(topic, batch.partition, record), position: `${batch.partition}:${record.offset}` } });
              total += 1;
            }
            const last = list.at(-1)?.offset;
            if (total >= limit || (last !== undefined && last >= range.high - 1n)) done.add(batch.partition);
            if (total >= limit || done.size === wanted.length) finish();
          },
        });
        await finished;
      });
    } finally {
      clearTimeout(timer);
      await consumer.disconnect().catch(() => {});
      // The throwaway group committed nothing; removing it keeps `lag` listings clean.
      await this.#admin.deleteGroups([groupId]).catch(() => {});
    }
  }

  async purge(topic: string): Promise<number> {
    const ranges = await this.#ranges(topic);
    const count = ranges.reduce((n, r) => n + Number(r.high - r.low), 0);
    const partitions = ranges.filter((r) => r.high > r.low).map((r) => ({ partition: r.partition, offset: r.high.toString() }));
    if (partitions.length > 0) await this.#run('deleteTopicRecords', () => this.#admin.deleteTopicRecords({ topic, partitions }));
    return count;
  }

  async backlog(topic: string | undefined, group: string | undefined): Promise<readonly BacklogRow[]> {
    const pairs: Array<{ topic: string; group: string }> = [];
    if (topic !== undefined && group !== undefined) {
      pairs.push({ topic, group });
    } else {
      const topics = topic === undefined ? await this.listTopics() : [topic];
      if (topic !== undefined && !topics.includes(topic)) throw new MqError('NOT_FOUND', `topic "${topic}" does not exist`, { details: { topic } });
      const { groups } = await this.#run('listGroups', () => this.#admin.listGroups());
      for (const { groupId } of groups) {
        if (groupId.startsWith('mqkit-ops-peek-')) continue;
        // mqkit's group G on topic T is `G.T`; the longest matching topic wins.
        const t = topics.filter((name) => groupId.endsWith(`.${name}`) && groupId.length > name.length + 1).sort((a, b) => b.length - a.length)[0];
        if (t === undefined) continue;
        const g = groupId.slice(0, groupId.length - t.length - 1);
        if (group === undefined || g === group) pairs.push({ topic: t, group: g });
      }
    }
    const rows: BacklogRow[] = [];
    for (const p of pairs.sort((a, b) => a.topic.localeCompare(b.topic) || a.group.localeCompare(b.group))) {
      const groupId = nativeGroupId(p.group, p.topic);
      const ranges = await this.#ranges(p.topic);
      const [committed] = await this.#run('fetchOffsets', () => this.#admin.fetchOffsets({ groupId, topics: [p.topic] }));
      const described = await this.#run('describeGroups', () => this.#admin.describeGroups([groupId]));
      const state = described.groups[0];
      if (topic !== undefined && group !== undefined && (state === undefined || state.state === 'Dead') && (committed?.partitions ?? []).every((c) => Number(c.offset) < 0)) {
        throw new MqError('NOT_FOUND', `group "${p.group}" (Kafka group ${groupId}) has no offsets on topic "${p.topic}"`, { details: { topic: p.topic, group: p.group } });
      }
      const consumers = state?.members.length;
      for (const r of ranges) {
        const c = committed?.partitions.find((x) => x.partition === r.partition);
        const from = c !== undefined && BigInt(c.offset) >= 0n ? BigInt(c.offset) : r.low;
        const lag = Number(r.high > from ? r.high - from : 0n);
        rows.push({ topic: p.topic, group: p.group, partition: String(r.partition), backlog: lag, consumers });
      }
    }
    return rows;
  }

  async close(): Promise<void> {
    await this.#admin.disconnect().catch(() => {});
  }
}
