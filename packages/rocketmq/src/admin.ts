/**
 * The declare step: typed topics and (orderly) consumer groups, created through RocketMQ's
 * remoting protocol (what `mqadmin` speaks), in milliseconds instead of a 4 s JVM per call. The
 * gRPC proxy offers no admin API, so this talks to the name server (to find the brokers) and to
 * each master broker directly.
 */
import { Socket } from 'node:net';
import { MqError } from '@mqkit/core/driver';
import type { TopicType } from './topic-types.ts';

/** Request codes of the remoting protocol (org.apache.rocketmq.remoting.protocol.RequestCode). */
const REQUEST = { updateAndCreateTopic: 17, getBrokerClusterInfo: 106, updateAndCreateSubscriptionGroup: 200, getAllSubscriptionGroupConfig: 201, getRouteInfoByTopic: 105, queryConsumerOffset: 14, updateConsumerOffset: 15, getMaxOffset: 30 } as const;
/** ResponseCode.QUERY_NOT_FOUND: the group has no offset on that queue. */
const QUERY_NOT_FOUND = 22;
/** ResponseCode.TOPIC_NOT_EXIST. */
const TOPIC_NOT_EXIST = 17;
const RESPONSE_FLAG = 1;
const SUCCESS = 0;

/** Options of {@link RocketmqAdmin}. */
export interface RocketmqAdminOptions {
  /** Name server `host:port` (e.g. `127.0.0.1:9876`). */
  readonly namesrv: string;
  /** Per-request timeout, in ms. @default 5000 */
  readonly timeoutMs?: number;
}

/** Options of {@link RocketmqAdmin.createTopic}. */
export interface CreateTopicOptions {
  /** Read and write queues per broker. @default 8 (FIFO: 8 as well; order is per message group) */
  readonly queues?: number;
}

/** Options of {@link RocketmqAdmin.createGroup}. */
export interface CreateGroupOptions {
  /** Orderly consumption (FIFO): one in-flight message per message group. @default false */
  readonly orderly?: boolean;
  /** Redeliveries before the broker moves a message to `%DLQ%<group>`. @default 16 */
  readonly retryMaxTimes?: number;
}

/** A remoting response: code, remark, body and header fields. */
export interface Response {
  readonly code: number;
  readonly remark: string;
  readonly body: Buffer;
  readonly extFields: Readonly<Record<string, string>>;
}

/** Creates typed topics and consumer groups; idempotent (creating twice updates in place). */
export class RocketmqAdmin {
  readonly #namesrv: string;
  readonly #timeoutMs: number;
  #brokers: Promise<string[]> | undefined;
  static #opaque = 1;

  constructor(options: RocketmqAdminOptions) {
    this.#namesrv = options.namesrv;
    this.#timeoutMs = options.timeoutMs ?? 5000;
  }

  /** Creates (or retypes) `topic` as `type` on every master broker. */
  async createTopic(topic: string, type: TopicType, options: CreateTopicOptions = {}): Promise<void> {
    const queues = String(options.queues ?? 8);
    await this.#onEveryBroker((broker) =>
      this.#call(broker, REQUEST.updateAndCreateTopic, {
        topic,
        defaultTopic: 'TBW102',
        readQueueNums: queues,
        writeQueueNums: queues,
        perm: '6',
        topicFilterType: 'SINGLE_TAG',
        topicSysFlag: '0',
        order: 'false',
        attributes: `+message.type=${type}`,
      }),
    );
  }

  /** Creates (or updates) consumer group `group` on every master broker. */
  async createGroup(group: string, options: CreateGroupOptions = {}): Promise<void> {
    const body = JSON.stringify({
      groupName: group,
      consumeEnable: true,
      consumeFromMinEnable: true,
      consumeBroadcastEnable: true,
      consumeMessageOrderly: options.orderly ?? false,
      retryQueueNums: 1,
      retryMaxTimes: options.retryMaxTimes ?? 16,
      brokerId: 0,
      whichBrokerWhenConsumeSlowly: 1,
      notifyConsumerIdsChangedEnable: true,
      groupSysFlag: 0,
      consumeTimeoutMinute: 15,
      attributes: {},
    });
    await this.#onEveryBroker((broker) => this.#call(broker, REQUEST.updateAndCreateSubscriptionGroup, {}, Buffer.from(body)));
  }

  /**
   * Whether the name server routes `topic`. Asked here rather than through the proxy, which
   * remembers a missing route for a while: a topic created right after a miss there stays
   * unroutable for ~30 s.
   */
  async topicExists(topic: string): Promise<boolean> {
    const response = await this.#call(this.#namesrv, REQUEST.getRouteInfoByTopic, { topic });
    if (response.code === SUCCESS) return true;
    if (response.code === TOPIC_NOT_EXIST) return false;
    throw new MqError('REJECTED', `rocketmq admin: name server refused the route of "${topic}" (code ${response.code}): ${response.remark}`);
  }

  /**
   * Makes `group` start on `topic` where the topic ends now, on every queue where it has no
   * consumer offset yet (queues where it has one are left alone). Without an offset, the broker
   * starts a new group's first pop at the queue's end (offset max - 1) unless the queue's first
   * entry is still in the page cache: messages published between declaring the group and its first
   * subscriber would be skipped after a broker restart or on a long-lived topic.
   */
  async startGroupAtEnd(group: string, topic: string): Promise<void> {
    const response = await this.#call(this.#namesrv, REQUEST.getRouteInfoByTopic, { topic });
    if (response.code !== SUCCESS) throw new MqError('NOT_FOUND', `rocketmq admin: no route for topic "${topic}" (code ${response.code}): ${response.remark}`);
    const queues = parseQueues(response.body.toString('utf8'));
    await Promise.all(
      queues.map(async ({ broker, queueId }) => {
        const ext = { consumerGroup: group, topic, queueId: String(queueId) };
        // setZeroIfNotFound=false: otherwise a group without an offset reads as 0 on a hot queue.
        const current = await this.#call(broker, REQUEST.queryConsumerOffset, { ...ext, setZeroIfNotFound: 'false' });
        if (current.code === SUCCESS) return;
        if (current.code !== QUERY_NOT_FOUND) throw new MqError('REJECTED', `rocketmq admin: broker ${broker} refused the offset of "${group}" (code ${current.code}): ${current.remark}`);
        const max = await this.#call(broker, REQUEST.getMaxOffset, { topic, queueId: String(queueId) });
        if (max.code !== SUCCESS || max.extFields.offset === undefined) throw new MqError('REJECTED', `rocketmq admin: broker ${broker} refused the end of "${topic}" (code ${max.code}): ${max.remark}`);
        const commit = await this.#call(broker, REQUEST.updateConsumerOffset, { ...ext, commitOffset: max.extFields.offset });
        if (commit.code !== SUCCESS) throw new MqError('REJECTED', `rocketmq admin: broker ${broker} refused to set the offset of "${group}" (code ${commit.code}): ${commit.remark}`);
      }),
    );
  }

  /** The consumer offset of `group` on one queue, or undefined when it has none (for tests). */
  async consumerOffset(group: string, topic: string, queueId: number): Promise<bigint | undefined> {
    const route = await this.#call(this.#namesrv, REQUEST.getRouteInfoByTopic, { topic });
    const queue = parseQueues(route.body.toString('utf8')).find((q) => q.queueId === queueId);
    if (!queue) return undefined;
    const response = await this.#call(queue.broker, REQUEST.queryConsumerOffset, { consumerGroup: group, topic, queueId: String(queueId), setZeroIfNotFound: 'false' });
    return response.code === SUCCESS && response.extFields.offset !== undefined ? BigInt(response.extFields.offset) : undefined;
  }

  /**
   * Consumer groups that exist on every master broker (a group missing on one of them is missing:
   * that broker's queues would not be consumed by it).
   */
  async groups(): Promise<Set<string>> {
    const brokers = await this.brokers();
    const perBroker = await Promise.all(
      brokers.map(async (broker) => {
        const response = await this.#call(broker, REQUEST.getAllSubscriptionGroupConfig, {});
        if (response.code !== SUCCESS) throw new MqError('REJECTED', `rocketmq admin: broker ${broker} refused the group list (code ${response.code}): ${response.remark}`);
        return parseGroupNames(response.body.toString('utf8'));
      }),
    );
    const [first = new Set<string>(), ...rest] = perBroker;
    return new Set([...first].filter((g) => rest.every((names) => names.has(g))));
  }

  async #onEveryBroker(action: (broker: string) => Promise<Response>): Promise<void> {
    const brokers = await this.brokers();
    await Promise.all(
      brokers.map(async (broker) => {
        const response = await action(broker);
        if (response.code !== SUCCESS) {
          throw new MqError('REJECTED', `rocketmq admin: broker ${broker} refused (code ${response.code}): ${response.remark}`);
        }
      }),
    );
  }

  /** Master broker addresses, from the name server's cluster info (cached). */
  brokers(): Promise<string[]> {
    this.#brokers ??= this.#call(this.#namesrv, REQUEST.getBrokerClusterInfo, {}).then((response) => {
      if (response.code !== SUCCESS) throw new MqError('REJECTED', `rocketmq admin: name server refused cluster info: ${response.remark}`);
      const masters = parseMasterAddresses(response.body.toString('utf8'));
      if (masters.length === 0) throw new MqError('NOT_FOUND', 'rocketmq admin: the name server knows no master broker');
      return masters;
    });
    this.#brokers.catch(() => {
      this.#brokers = undefined;
    });
    return this.#brokers;
  }

  /** @internal one remoting request to the name server (`address` undefined) or a broker, for ops.ts (`mqkit dlq`, `mqkit lag`). */
  request(address: string | undefined, code: number, extFields: Record<string, string>): Promise<Response> {
    return this.#call(address ?? this.#namesrv, code, extFields);
  }

  #call(address: string, code: number, extFields: Record<string, string>, body?: Buffer): Promise<Response> {
    const opaque = RocketmqAdmin.#opaque++;
    const frame = encodeFrame({ code, extFields, flag: 0, language: 'JAVA', opaque, serializeTypeCurrentRPC: 'JSON', version: 453 }, body);
    return new Promise<Response>((resolve, reject) => {
      const [host, port] = splitHostPort(address);
      const socket = new Socket();
      let buffered: Buffer = Buffer.alloc(0);
      const fail = (err: unknown): void => {
        socket.destroy();
        reject(err instanceof MqError ? err : new MqError('CONNECTION', `rocketmq admin: ${address}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
      };
      socket.setTimeout(this.#timeoutMs, () => fail(new MqError('TIMEOUT', `rocketmq admin: ${address} did not answer in ${this.#timeoutMs} ms`)));
      socket.once('error', fail);
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        for (;;) {
          const decoded = decodeFrame(buffered);
          if (!decoded) return;
          buffered = decoded.rest;
          if ((decoded.header.flag & RESPONSE_FLAG) !== 0 && decoded.header.opaque === opaque) {
            socket.end();
            const extFields = (decoded.header.extFields ?? {}) as Record<string, string>;
            resolve({ code: decoded.header.code, remark: decoded.header.remark ?? '', body: decoded.body, extFields });
            return;
          }
        }
      });
      socket.connect(port, host, () => socket.write(frame));
    });
  }
}

interface Header {
  readonly code: number;
  readonly flag: number;
  readonly opaque: number;
  readonly remark?: string;
  readonly [field: string]: unknown;
}

/** `[total length][serialize type << 24 | header length][JSON header][body]`, big-endian. */
export function encodeFrame(header: Readonly<Record<string, unknown>>, body: Buffer = Buffer.alloc(0)): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const frame = Buffer.alloc(8 + json.length + body.length);
  frame.writeInt32BE(4 + json.length + body.length, 0);
  frame.writeInt32BE(json.length & 0xffffff, 4); // serialize type 0 = JSON
  json.copy(frame, 8);
  body.copy(frame, 8 + json.length);
  return frame;
}

/** One frame from the front of `data`, or undefined until it is complete. */
export function decodeFrame(data: Buffer): { header: Header; body: Buffer; rest: Buffer } | undefined {
  if (data.length < 8) return undefined;
  const total = data.readInt32BE(0);
  if (data.length < 4 + total) return undefined;
  const headerLength = data.readInt32BE(4) & 0xffffff;
  const header = JSON.parse(data.subarray(8, 8 + headerLength).toString('utf8')) as Header;
  return { header, body: data.subarray(8 + headerLength, 4 + total), rest: data.subarray(4 + total) };
}

/**
 * Master (brokerId 0) addresses from ClusterInfo. The broker serialises with fastjson, which
 * writes integer map keys unquoted (`{0:"host:port"}`): not JSON, hence a pattern.
 */
export function parseMasterAddresses(clusterInfo: string): string[] {
  const found = new Set<string>();
  for (const table of clusterInfo.matchAll(/"brokerAddrs"\s*:\s*\{([^}]*)\}/g)) {
    const master = /(?:^|,)\s*"?0"?\s*:\s*"([^"]+)"/.exec(table[1] ?? '');
    if (master?.[1]) found.add(master[1]);
  }
  return [...found];
}

/**
 * The readable queues of a topic from its TopicRouteData: the master broker address and queue id
 * of each. fastjson writes the broker address map with bare integer keys (`{0:"host:port"}`),
 * quoted here before JSON.parse.
 */
export function parseQueues(routeData: string): Array<{ broker: string; queueId: number }> {
  const route = JSON.parse(routeData.replace(/([{,])\s*(-?\d+)\s*:/g, '$1"$2":')) as {
    brokerDatas?: Array<{ brokerName?: string; brokerAddrs?: Record<string, string> }>;
    queueDatas?: Array<{ brokerName?: string; readQueueNums?: number }>;
  };
  const masters = new Map<string, string>();
  for (const b of route.brokerDatas ?? []) {
    const master = b.brokerAddrs?.['0'];
    if (b.brokerName && master) masters.set(b.brokerName, master);
  }
  const queues: Array<{ broker: string; queueId: number }> = [];
  for (const q of route.queueDatas ?? []) {
    const broker = q.brokerName === undefined ? undefined : masters.get(q.brokerName);
    if (!broker) continue;
    for (let queueId = 0; queueId < (q.readQueueNums ?? 0); queueId += 1) queues.push({ broker, queueId });
  }
  return queues;
}

/** Group names in a SubscriptionGroupWrapper (fastjson: not always JSON, hence a pattern). */
export function parseGroupNames(wrapper: string): Set<string> {
  return new Set([...wrapper.matchAll(/"groupName"\s*:\s*"([^"]+)"/g)].map((m) => m[1]!));
}

function splitHostPort(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  const port = Number(address.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port)) throw new MqError('CONFIG', `rocketmq admin: "${address}" is not host:port`);
  return [address.slice(0, at).replace(/^\[|\]$/g, ''), port];
}
