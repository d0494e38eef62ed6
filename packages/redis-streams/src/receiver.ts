/**
 * The pull side: one consumer of a group, driven by core's PullSubscription. Fresh entries come from XREADGROUP `>`
 * on a connection of its own (it blocks); redeliveries (due nacked entries, expired leases) from the RECLAIM script.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { MqError, type DriverReceiver, type ReceivedMessage, type SettleResults } from '@mqkit/core/driver';
import type { Redis } from 'ioredis';
import { decodeFields } from './codec.ts';
import { execAll, rethrow, toMqError } from './errors.ts';
import type { ReceiveSettings } from './options.ts';

/** The consumer that owns parked (nacked, waiting) entries, so that closing consumers own none. */
export const PARKING_CONSUMER = 'mqkit-parked';

/** The main connection with the scripts the driver defines on it. */
export type Connection = Redis & {
  mqkitReclaimBuffer(...args: Array<string | number>): Promise<[Buffer, Array<[Buffer, Buffer[], number]>, Buffer | null, Buffer | null]>;
  mqkitExtend(...args: Array<string | number>): Promise<number[]>;
  mqkitRelease(...args: Array<string | number>): Promise<number>;
};

/** `scope`: where entry ids are unique (server, database, stream, group); `trim`: XADD trimming of moved delayed entries. */
type ReceiverArgs = { readonly redis: Connection; readonly topic: string; readonly group: string; readonly settings: ReceiveSettings; readonly scope: string };
type Hooks = { readonly trim: (now: number) => readonly string[]; readonly onClose: (receiver: RedisStreamsReceiver) => void };

export class RedisStreamsReceiver implements DriverReceiver {
  readonly batchSize: number;
  readonly leaseMs: number;
  readonly scope: string;
  readonly #a: ReceiverArgs & Hooks;
  /** The stream, the group's parked (nacked) entries scored by due time, the topic's delay set and side stream. */
  readonly #keys: readonly string[];
  /** The blocking connection (XREADGROUP BLOCK), ended early with CLIENT UNBLOCK from the main one. */
  readonly #blocking: Redis;
  readonly #consumer = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  #blockingId: number | undefined;
  #blockingUntil = 0; // until when the blocking read in flight waits (0: none)
  #reclaimAt = 0; // when the next redelivery pass is due (a nack's due time, a delayed publish, or blockMs)
  #reclaimedLast = false;
  #cursor = '0-0';

  private constructor(args: ReceiverArgs & Hooks) {
    this.#a = args;
    this.#blocking = args.redis.duplicate({ lazyConnect: true });
    this.#keys = [args.topic, `mqkit:parked:${args.topic}:${args.group}`, `mqkit:delay:${args.topic}`, `mqkit:delayed:${args.topic}`];
    ({ settings: { batchSize: this.batchSize, leaseMs: this.leaseMs }, scope: this.scope } = args);
  }

  /** Creates the group (from the stream's first entry, so nothing published before is missed). */
  static async open(args: ReceiverArgs & Hooks): Promise<RedisStreamsReceiver> {
    await createGroup(args.redis, args.topic, args.group);
    const receiver = new RedisStreamsReceiver(args);
    receiver.#blocking.on('error', () => {}); // reported through the failing calls
    receiver.#blocking.on('ready', () => (receiver.#blockingId = undefined));
    await receiver.#blocking.connect().catch((err: unknown) => {
      receiver.#blocking.disconnect();
      throw toMqError(err, `connecting to Redis for ${args.topic}`);
    });
    return receiver;
  }

  async receive(max: number, signal: AbortSignal): Promise<readonly ReceivedMessage[]> {
    if (signal.aborted) return [];
    try {
      // Alternates with fresh reads while redeliveries are due, so neither starves the other.
      if (Date.now() >= this.#reclaimAt && !this.#reclaimedLast) {
        this.#reclaimedLast = true;
        const claimed = await this.#reclaim(max);
        if (claimed.length > 0) return claimed;
      }
      this.#reclaimedLast = false;
      return await this.#read(max, Math.floor(Math.min(this.#a.settings.blockMs, this.#reclaimAt - Date.now())), signal);
    } catch (err) {
      if (!/^NOGROUP/.test((err as Error).message ?? '')) throw toMqError(err, `receiving from ${this.#a.topic}`);
      await createGroup(this.#a.redis, this.#a.topic, this.#a.group); // the stream was deleted under us
      return [];
    }
  }

  async #reclaim(max: number): Promise<ReceivedMessage[]> {
    const { redis, group, settings } = this.#a;
    const now = Date.now();
    const [cursor, entries, parked, delayed] = await redis.mqkitReclaimBuffer(...this.#keys, group, this.#consumer, now, settings.leaseMs, this.#cursor, max, PARKING_CONSUMER, ...this.#a.trim(now));
    this.#cursor = cursor.toString();
    const due = Math.min(now + settings.blockMs, ...[parked, delayed].filter((s) => s !== null).map(Number));
    this.#reclaimAt = entries.length > 0 ? due : Math.max(due, now + 20);
    return entries.map(([id, fields, count]) => this.#entry(id.toString(), fields, count));
  }

  async #read(max: number, wait: number, signal: AbortSignal): Promise<ReceivedMessage[]> {
    if (wait > 0 && this.#blockingId === undefined) this.#blockingId = Number(await this.#blocking.client('ID'));
    const abort = (): void => this.#unblock();
    signal.addEventListener('abort', abort, { once: true });
    this.#blockingUntil = wait > 0 ? Date.now() + wait : 0;
    let reply: unknown[] | null;
    try {
      if (signal.aborted) return [];
      const block = wait > 0 ? ['BLOCK', wait] : [];
      reply = (await this.#blocking.callBuffer('XREADGROUP', 'GROUP', this.#a.group, this.#consumer, 'COUNT', max, ...block, 'STREAMS', this.#a.topic, '>')) as unknown[] | null;
    } finally {
      this.#blockingUntil = 0;
      signal.removeEventListener('abort', abort);
    }
    // RESP3 (ioredis 6's default) answers a map, flattened as [stream, entries]; RESP2 [[stream, entries]].
    const entries = (reply === null ? [] : Buffer.isBuffer(reply[0]) ? reply[1] : (reply[0] as unknown[] | undefined)?.[1]) as Array<[Buffer, Buffer[] | null]> | undefined;
    return (entries ?? []).flatMap(([id, fields]) => (fields ? [this.#entry(id.toString(), fields, 1)] : []));
  }

  #entry(id: string, fields: readonly Buffer[], deliveryCount: number): ReceivedMessage {
    return { envelope: decodeFields(this.#a.topic, id, fields), id, deliveryCount: Number(deliveryCount), meta: { stream: this.#a.topic, entryId: id, consumer: this.#consumer } };
  }

  /** Ends the blocking read in flight now (it resolves as if its time ran out). */
  #unblock(): void {
    if (this.#blockingUntil === 0 || this.#blockingId === undefined) return;
    this.#a.redis.client('UNBLOCK', this.#blockingId).catch(() => {}); // at worst the read ends at its BLOCK time
  }

  async ack(messages: readonly ReceivedMessage[]): Promise<SettleResults> {
    await this.#a.redis.xack(this.#a.topic, this.#a.group, ...messages.map((m) => m.id)).catch(rethrow(`acking on ${this.#a.topic}`));
  }

  /**
   * Parks the entries: scored by due time in the group's parked set and handed to the parking consumer (XCLAIM
   * JUSTID: no delivery counted), so no lease expiry redelivers them early; the pass that claims them counts one.
   */
  async nack(messages: readonly ReceivedMessage[], delayMs: number): Promise<SettleResults> {
    const due = Date.now() + delayMs;
    const ids = messages.map((m) => m.id);
    await execAll(this.#a.redis.multi().zadd(this.#keys[1]!, ...ids.flatMap((id) => [due, id])).xclaim(this.#a.topic, this.#a.group, PARKING_CONSUMER, 0, ...ids, 'JUSTID'), `nacking on ${this.#a.topic}`);
    this.#reclaimAt = Math.min(this.#reclaimAt, due);
    if (this.#blockingUntil > due + 5) this.#unblock();
  }

  /** Resets the entries' idle time while this consumer still owns them (no delivery counted). */
  async extend(messages: readonly ReceivedMessage[]): Promise<SettleResults> {
    const ids = messages.map((m) => m.id);
    const mine = await this.#a.redis.mqkitExtend(this.#a.topic, this.#a.group, this.#consumer, ...ids).catch(rethrow(`extending leases on ${this.#a.topic}`));
    return mine.map((ok) => (ok ? undefined : new MqError('REJECTED', 'lease lost: another consumer claimed the entry')));
  }

  /** Leaves the group when it owns no entry (core gave every held one back), and disconnects. */
  async close(): Promise<void> {
    this.#a.onClose(this);
    this.#unblock();
    await this.#a.redis.mqkitRelease(this.#a.topic, this.#a.group, this.#consumer).catch(() => {});
    this.#blocking.disconnect();
  }
}

/** XGROUP CREATE … 0 MKSTREAM; an existing group is fine. */
export async function createGroup(redis: Redis, topic: string, group: string): Promise<void> {
  await redis.xgroup('CREATE', topic, group, '0', 'MKSTREAM').catch((err: unknown) => {
    if (!/^BUSYGROUP/.test((err as Error).message ?? '')) throw toMqError(err, `creating consumer group ${group} on ${topic}`);
  });
}
