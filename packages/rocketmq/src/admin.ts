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
const REQUEST = { updateAndCreateTopic: 17, getBrokerClusterInfo: 106, updateAndCreateSubscriptionGroup: 200, getAllSubscriptionGroupConfig: 201, getRouteInfoByTopic: 105 } as const;
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

interface Response {
  readonly code: number;
  readonly remark: string;
  readonly body: Buffer;
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
            resolve({ code: decoded.header.code, remark: decoded.header.remark ?? '', body: decoded.body });
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
