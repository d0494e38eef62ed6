/**
 * Operations (`mqkit dlq`, `mqkit lag`) on RocketMQ 5, over the remoting protocol to the name
 * server and brokers (RocketmqAdmin; needs the `namesrv` option, like declaring groups).
 *
 * A dead-letter topic D is the NORMAL topic D. A topic is a log per queue that no one can delete
 * single messages from, so what is "still in" D is tracked by a consumer group of its own,
 * `mqkit-dlq`: D holds the messages after that group's offset in each queue. Reading pulls from
 * there (PULL_MESSAGE without committing: `peek`); removing a replayed message advances the
 * group's offset past it, so only from each queue's start without a gap (`prefix`, like Kafka);
 * purge moves it to the end. The messages themselves stay in the commit log until retention.
 * A group's backlog per queue is the max offset minus the group's consumer offset.
 */
import { inflateSync } from 'node:zlib';
import { MqError, type BacklogRow, type DriverOps, type MessageBatch, type OpsAdapter, type StoredMessage } from '@mqkit/core/driver';
import type { MessageView } from 'rocketmq-client-nodejs';
import { parseGroupNames, parseQueues, RocketmqAdmin, type Response } from './admin.ts';
import { fromMessageView } from './message-codec.ts';
import { parseConfig } from './options.ts';

/** The group whose offsets say what of a dead-letter topic was replayed or purged. */
export const DLQ_MARKER_GROUP = 'mqkit-dlq';

const CODE = { pullMessage: 11, queryConsumerOffset: 14, updateConsumerOffset: 15, getMinOffset: 31, getMaxOffset: 30, getRouteInfoByTopic: 105, getAllSubscriptionGroupConfig: 201 } as const;
const SUCCESS = 0;
const TOPIC_NOT_EXIST = 17;
const PULL_NOT_FOUND = 19;
const PULL_RETRY_IMMEDIATELY = 20;
const PULL_OFFSET_MOVED = 21;
const QUERY_NOT_FOUND = 22;
/** PullMessage sysFlag: the request carries its subscription (no consumer of the group is online). */
const FLAG_SUBSCRIPTION = 4;
const PULL_BATCH = 32;

/** The RocketMQ adapter's operations, for the same URLs as {@link rocketmq}; needs `namesrv`. */
export function ops(): OpsAdapter {
  return {
    schemes: ['rocketmq'],
    async create(url, options) {
      const config = parseConfig(url, options);
      if (!config.namesrv) throw new MqError('CONFIG', 'rocketmq: dlq and lag need the name server: add ?namesrv=host:9876 to the URL');
      const admin = new RocketmqAdmin({ namesrv: config.namesrv, timeoutMs: config.requestTimeoutMs });
      return new RocketmqOps(admin, config.namespace);
    },
  };
}

interface Queue {
  readonly broker: string;
  readonly queueId: number;
}

function expect(response: Response, what: string): Response {
  if (response.code !== SUCCESS) throw new MqError('INTERNAL', `rocketmq: ${what}: code ${response.code} ${response.remark}`);
  return response;
}

class RocketmqOps implements DriverOps {
  readonly name = 'rocketmq';
  readonly capabilities = { read: 'peek', remove: 'prefix', listTopics: false, listGroups: true } as const;
  readonly #admin: RocketmqAdmin;
  readonly #namespace: string;
  #marker: Promise<void> | undefined;

  constructor(admin: RocketmqAdmin, namespace: string) {
    this.#admin = admin;
    this.#namespace = namespace;
  }

  /** The name the broker knows (the proxy prefixes a namespace as `ns%name`). */
  #native(name: string): string {
    return this.#namespace ? `${this.#namespace}%${name}` : name;
  }

  async listTopics(): Promise<readonly string[]> {
    throw new MqError('UNSUPPORTED', 'rocketmq: cannot list topics here; name the topic');
  }

  async #queues(topic: string): Promise<Queue[]> {
    const route = await this.#admin.request(undefined, CODE.getRouteInfoByTopic, { topic: this.#native(topic) });
    if (route.code === TOPIC_NOT_EXIST) throw new MqError('NOT_FOUND', `topic "${topic}" does not exist`, { details: { topic } });
    return parseQueues(expect(route, `route of ${topic}`).body.toString('utf8')).sort((a, b) => a.broker.localeCompare(b.broker) || a.queueId - b.queueId);
  }

  async #offset(code: number, queue: Queue, topic: string): Promise<bigint> {
    const r = expect(await this.#admin.request(queue.broker, code, { topic: this.#native(topic), queueId: String(queue.queueId) }), `offsets of ${topic}`);
    return BigInt(r.extFields.offset ?? '0');
  }

  /** The group's consumer offset in the queue, or undefined when it has none. */
  async #groupOffset(group: string, queue: Queue, topic: string): Promise<bigint | undefined> {
    const r = await this.#admin.request(queue.broker, CODE.queryConsumerOffset, { consumerGroup: this.#native(group), topic: this.#native(topic), queueId: String(queue.queueId), setZeroIfNotFound: 'false' });
    if (r.code === QUERY_NOT_FOUND) return undefined;
    return BigInt(expect(r, `offset of ${group} on ${topic}`).extFields.offset ?? '0');
  }

  /** The marker group exists before anything pulls or commits with it (brokers may not auto-create groups). */
  #markerGroup(): Promise<void> {
    this.#marker ??= this.#admin.createGroup(this.#native(DLQ_MARKER_GROUP)).catch((err: unknown) => {
      this.#marker = undefined;
      throw err;
    });
    return this.#marker;
  }

  async #setGroupOffset(group: string, queue: Queue, topic: string, offset: bigint): Promise<void> {
    await this.#markerGroup();
    expect(
      await this.#admin.request(queue.broker, CODE.updateConsumerOffset, { consumerGroup: this.#native(group), topic: this.#native(topic), queueId: String(queue.queueId), commitOffset: offset.toString() }),
      `moving ${DLQ_MARKER_GROUP} on ${topic}`,
    );
  }

  /** Per queue: where the dead letters start (the marker group's offset, at least the min) and the max. */
  async #ranges(topic: string): Promise<Array<{ queue: Queue; start: bigint; max: bigint }>> {
    const queues = await this.#queues(topic);
    return Promise.all(
      queues.map(async (queue) => {
        const [min, max, marker] = await Promise.all([
          this.#offset(CODE.getMinOffset, queue, topic),
          this.#offset(CODE.getMaxOffset, queue, topic),
          this.#groupOffset(DLQ_MARKER_GROUP, queue, topic),
        ]);
        const start = marker !== undefined && marker > min ? marker : min;
        return { queue, start: start > max ? max : start, max };
      }),
    );
  }

  async depth(topic: string): Promise<number> {
    return (await this.#ranges(topic)).reduce((n, r) => n + Number(r.max - r.start), 0);
  }

  async read(topic: string, limit: number): Promise<MessageBatch> {
    const ranges = await this.#ranges(topic);
    if (ranges.some((r) => r.max > r.start)) await this.#markerGroup();
    const messages: StoredMessage[] = [];
    const at = new Map<StoredMessage, { queue: Queue; offset: bigint }>();
    for (const r of ranges) {
      let offset = r.start;
      while (offset < r.max && messages.length < limit) {
        const pulled = await this.#pull(topic, r.queue, offset, Math.min(PULL_BATCH, limit - messages.length));
        if (pulled.messages.length === 0) break;
        for (const m of pulled.messages) {
          if (messages.length >= limit) break;
          const message: StoredMessage = { envelope: m.envelope, position: `${r.queue.broker}/${r.queue.queueId}:${m.offset}` };
          messages.push(message);
          at.set(message, { queue: r.queue, offset: m.offset });
        }
        offset = pulled.next;
      }
    }
    const starts = new Map(ranges.map((r) => [r.queue, r.start]));
    return {
      messages,
      remove: async (some) => {
        const upTo = new Map<Queue, { end: bigint; count: number }>();
        for (const m of some) {
          const p = at.get(m);
          if (!p) throw new MqError('INVALID_MESSAGE', 'remove: a message not read in this batch');
          const cur = upTo.get(p.queue) ?? { end: 0n, count: 0 };
          upTo.set(p.queue, { end: p.offset + 1n > cur.end ? p.offset + 1n : cur.end, count: cur.count + 1 });
        }
        for (const [queue, { end, count }] of upTo) {
          if (BigInt(count) !== end - (starts.get(queue) ?? 0n)) {
            throw new MqError('UNSUPPORTED', `rocketmq: cannot remove messages of queue ${queue.queueId} out of order (a queue is consumed from its start only)`);
          }
        }
        for (const [queue, { end }] of upTo) {
          await this.#setGroupOffset(DLQ_MARKER_GROUP, queue, topic, end);
          starts.set(queue, end);
        }
        for (const m of some) at.delete(m);
      },
      release: async () => {},
    };
  }

  /** PULL_MESSAGE from `offset` without committing anything. */
  async #pull(topic: string, queue: Queue, offset: bigint, max: number): Promise<{ messages: Array<{ offset: bigint; envelope: StoredMessage['envelope'] }>; next: bigint }> {
    const r = await this.#admin.request(queue.broker, CODE.pullMessage, {
      consumerGroup: this.#native(DLQ_MARKER_GROUP),
      topic: this.#native(topic),
      queueId: String(queue.queueId),
      queueOffset: offset.toString(),
      maxMsgNums: String(max),
      sysFlag: String(FLAG_SUBSCRIPTION),
      commitOffset: '0',
      suspendTimeoutMillis: '0',
      subscription: '*',
      subVersion: String(Date.now()),
      expressionType: 'TAG',
    });
    const next = BigInt(r.extFields.nextBeginOffset ?? offset.toString());
    if (r.code === PULL_NOT_FOUND || r.code === PULL_RETRY_IMMEDIATELY || r.code === PULL_OFFSET_MOVED) return { messages: [], next };
    expect(r, `pulling ${topic}`);
    return { messages: decodeMessages(r.body).map((m) => ({ offset: m.queueOffset, envelope: fromMessageView(m.view) })), next };
  }

  async purge(topic: string): Promise<number> {
    const ranges = await this.#ranges(topic);
    for (const r of ranges) if (r.max > r.start) await this.#setGroupOffset(DLQ_MARKER_GROUP, r.queue, topic, r.max);
    return ranges.reduce((n, r) => n + Number(r.max - r.start), 0);
  }

  async backlog(topic: string | undefined, group: string | undefined): Promise<readonly BacklogRow[]> {
    if (topic === undefined) throw new MqError('UNSUPPORTED', 'rocketmq: cannot list topics here; name the topic: mqkit lag <topic>');
    const queues = await this.#queues(topic);
    let groups: string[];
    if (group !== undefined) groups = [group];
    else {
      const brokers = [...new Set(queues.map((q) => q.broker))];
      const names = new Set<string>();
      for (const b of brokers) for (const n of parseGroupNames(expect(await this.#admin.request(b, CODE.getAllSubscriptionGroupConfig, {}), 'groups').body.toString('utf8'))) names.add(n);
      const prefix = this.#namespace ? `${this.#namespace}%` : '';
      groups = [...names].filter((n) => n.startsWith(prefix) && n !== this.#native(DLQ_MARKER_GROUP)).map((n) => n.slice(prefix.length));
    }
    const rows: BacklogRow[] = [];
    for (const g of groups.sort()) {
      const offsets = await Promise.all(queues.map(async (q) => ({ q, max: await this.#offset(CODE.getMaxOffset, q, topic), at: await this.#groupOffset(g, q, topic) })));
      // Groups with no offset on this topic do not consume it (the broker lists all its groups).
      if (group === undefined && offsets.every((o) => o.at === undefined)) continue;
      if (group !== undefined && offsets.every((o) => o.at === undefined)) {
        throw new MqError('NOT_FOUND', `group "${g}" has no offsets on topic "${topic}"`, { details: { topic, group: g } });
      }
      for (const { q, max, at } of offsets) {
        const lag = at === undefined ? 0n : max - at;
        rows.push({ topic, group: g, partition: `${q.broker}/${q.queueId}`, backlog: Number(lag > 0n ? lag : 0n) });
      }
    }
    return rows;
  }

  async close(): Promise<void> {}
}

/** Fields of a stored message that fromMessageView reads. */
interface Decoded {
  readonly queueOffset: bigint;
  readonly view: MessageView;
}

const MAGIC_V2 = -626843477;
const SYSTEM_PROPERTY = /^(__|[A-Z][A-Z0-9_]*$)/;
const FLAG_COMPRESSED = 1;
const FLAG_BORNHOST_V6 = 1 << 4;
const FLAG_STOREHOST_V6 = 1 << 5;

/** Messages in a PULL_MESSAGE body (the broker's MessageDecoder layout, v1 and v2 magic). */
export function decodeMessages(body: Buffer): Decoded[] {
  const out: Decoded[] = [];
  let at = 0;
  while (at + 4 <= body.length) {
    const size = body.readInt32BE(at);
    if (size <= 0 || at + size > body.length) break;
    let p = at + 4;
    const magic = body.readInt32BE(p);
    p += 4 + 4; // magic, body CRC
    const queueId = body.readInt32BE(p);
    p += 4 + 4; // queue id, flag
    const queueOffset = body.readBigInt64BE(p);
    p += 8 + 8; // queue offset, physical offset
    const sysFlag = body.readInt32BE(p);
    p += 4;
    const born = Number(body.readBigInt64BE(p));
    p += 8 + ((sysFlag & FLAG_BORNHOST_V6) !== 0 ? 20 : 8);
    p += 8 + ((sysFlag & FLAG_STOREHOST_V6) !== 0 ? 20 : 8); // store timestamp, store host
    p += 4 + 8; // reconsume times, prepared transaction offset
    const bodyLength = body.readInt32BE(p);
    p += 4;
    let content = body.subarray(p, p + bodyLength);
    p += bodyLength;
    if ((sysFlag & FLAG_COMPRESSED) !== 0) content = inflateSync(content);
    const topicLength = magic === MAGIC_V2 ? body.readInt16BE(p) : body.readInt8(p);
    p += magic === MAGIC_V2 ? 2 : 1;
    const topic = body.toString('utf8', p, p + topicLength);
    p += topicLength;
    const propertiesLength = body.readInt16BE(p);
    p += 2;
    const properties = new Map<string, string>();
    let uniqueKey: string | undefined;
    for (const pair of body.toString('utf8', p, p + propertiesLength).split('\u0002')) {
      const sep = pair.indexOf('\u0001');
      if (sep <= 0) continue;
      const name = pair.slice(0, sep);
      if (name === 'UNIQ_KEY') uniqueKey = pair.slice(sep + 1);
      // The broker's own properties (BORN_TIMESTAMP, CLUSTER, …: upper case, or __-prefixed) are
      // stripped by the proxy before a client sees them, and refused if published again.
      if (SYSTEM_PROPERTY.test(name)) continue;
      properties.set(name, pair.slice(sep + 1));
    }
    const view = { topic, body: content, properties, messageId: uniqueKey ?? `${queueId}:${queueOffset}`, messageGroup: undefined, bornTimestamp: new Date(born) };
    out.push({ queueOffset, view: view as unknown as MessageView });
    at += size;
  }
  return out;
}
