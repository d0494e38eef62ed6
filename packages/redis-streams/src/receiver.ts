/**
 * The pull side: one consumer of a group, driven by core's PullSubscription. Fresh entries come
 * from XREADGROUP `>` on a connection of its own (it blocks); redeliveries (nacked entries once
 * due, a dead consumer's entries once their lease expired) from the RECLAIM script.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { MqError, type DriverReceiver, type Envelope, type ReceivedMessage, type SettleResults } from '@mqkit/core/driver';
import type { Redis } from 'ioredis';
import { decodeFields } from './codec.ts';
import { toMqError } from './errors.ts';
import type { ReceiveSettings } from './options.ts';

/** The consumer that owns parked (nacked, waiting) entries, so that closing consumers own none. */
export const PARKING_CONSUMER = 'mqkit-parked';

export interface Entry extends ReceivedMessage {
  readonly meta: Readonly<Record<string, string>>;
}

/** The script commands {@link RedisStreamsDriver} defines on its connections. */
export interface ScriptCommands {
  mqkitReclaimBuffer(...args: Array<string | number>): Promise<[Buffer, Array<[Buffer, Buffer[], number]>, Buffer | null, Buffer | null]>;
  mqkitExtend(...args: Array<string | number>): Promise<number[]>;
  mqkitRelease(...args: Array<string | number>): Promise<number>;
}

export interface ReceiverArgs {
  readonly redis: Redis & ScriptCommands;
  readonly topic: string;
  readonly group: string;
  readonly keys: { readonly parked: string; readonly delay: string; readonly delayed: string };
  readonly settings: ReceiveSettings;
  readonly scope: string;
  readonly trim: (now: number) => readonly string[];
}

export class RedisStreamsReceiver implements DriverReceiver<Entry> {
  readonly batchSize: number;
  readonly leaseMs: number;
  readonly scope: string;
  readonly #a: ReceiverArgs;
  /** The blocking connection (XREADGROUP BLOCK), unblocked with CLIENT UNBLOCK from the main one. */
  readonly #blocking: Redis;
  readonly #consumer = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  #blockingId: number | undefined;
  /** Until when the blocking read in flight waits (0: none). */
  #blockingUntil = 0;
  /** When the next redelivery pass is due (a nack's due time, a delayed publish, or blockMs). */
  #reclaimAt = 0;
  #reclaimedLast = false;
  #cursor = '0-0';

  private constructor(args: ReceiverArgs, blocking: Redis) {
    this.#a = args;
    this.#blocking = blocking;
    this.batchSize = args.settings.batchSize;
    this.leaseMs = args.settings.leaseMs;
    this.scope = args.scope;
  }

  /** Creates the group (from the stream's first entry, so nothing published before is missed). */
  static async open(args: ReceiverArgs): Promise<RedisStreamsReceiver> {
    await createGroup(args.redis, args.topic, args.group);
    const blocking = args.redis.duplicate({ lazyConnect: true });
    const receiver = new RedisStreamsReceiver(args, blocking);
    blocking.on('error', () => {}); // reported through the failing calls
    blocking.on('ready', () => (receiver.#blockingId = undefined));
    try {
      await blocking.connect();
    } catch (err) {
      blocking.disconnect();
      throw toMqError(err, `connecting to Redis for ${args.topic}`);
    }
    return receiver;
  }

  async receive(max: number, signal: AbortSignal): Promise<readonly Entry[]> {
    if (signal.aborted) return [];
    try {
      if (Date.now() >= this.#reclaimAt && !this.#reclaimedLast) {
        this.#reclaimedLast = true;
        const claimed = await this.#reclaim(max);
        if (claimed.length > 0) return claimed;
      }
      this.#reclaimedLast = false;
      return await this.#read(max, Math.min(this.#a.settings.blockMs, this.#reclaimAt - Date.now()), signal);
    } catch (err) {
      if (/^NOGROUP/.test((err as Error).message ?? '')) {
        // The stream was deleted under us: create it and the group again.
        await createGroup(this.#a.redis, this.#a.topic, this.#a.group);
        return [];
      }
      throw toMqError(err, `receiving from ${this.#a.topic}`);
    }
  }

  async #reclaim(max: number): Promise<Entry[]> {
    const { redis, topic, group, keys, settings } = this.#a;
    const now = Date.now();
    const trim = this.#a.trim(now);
    const [cursor, entries, parked, delayed] = await redis.mqkitReclaimBuffer(
      topic, keys.parked, keys.delay, keys.delayed,
      group, this.#consumer, now, settings.leaseMs, this.#cursor, max, PARKING_CONSUMER, ...trim,
    );
    this.#cursor = cursor.toString();
    const due = Math.min(now + settings.blockMs, ...[parked, delayed].filter((s) => s !== null).map(Number));
    this.#reclaimAt = entries.length > 0 ? due : Math.max(due, now + 20);
    return entries.map(([id, fields, count]) => this.#entry(id.toString(), fields, count));
  }

  async #read(max: number, waitMs: number, signal: AbortSignal): Promise<Entry[]> {
    const { topic, group } = this.#a;
    const wait = Math.floor(waitMs);
    const block = wait > 0 ? ['BLOCK', wait] : [];
    if (wait > 0 && this.#blockingId === undefined) this.#blockingId = Number(await this.#blocking.client('ID'));
    const abort = (): void => this.#unblock();
    signal.addEventListener('abort', abort, { once: true });
    this.#blockingUntil = wait > 0 ? Date.now() + wait : 0;
    let reply: unknown[] | null;
    try {
      if (signal.aborted) return [];
      reply = (await this.#blocking.callBuffer('XREADGROUP', 'GROUP', group, this.#consumer, 'COUNT', max, ...block, 'STREAMS', topic, '>')) as typeof reply;
    } finally {
      this.#blockingUntil = 0;
      signal.removeEventListener('abort', abort);
    }
    const out: Entry[] = [];
    // RESP3 (ioredis 6 default) answers a map, flattened as [stream, entries]; RESP2 [[stream, entries]].
    const entries = (reply === null ? [] : Buffer.isBuffer(reply[0]) ? reply[1] : (reply[0] as unknown[] | undefined)?.[1]) as Array<[Buffer, Buffer[] | null]> | undefined;
    for (const [id, fields] of entries ?? []) if (fields) out.push(this.#entry(id.toString(), fields, 1));
    return out;
  }

  #entry(id: string, fields: readonly Buffer[], count: number): Entry {
    const envelope: Envelope = decodeFields(this.#a.topic, id, fields);
    return { envelope, id, deliveryCount: Number(count), meta: { stream: this.#a.topic, entryId: id, consumer: this.#consumer } };
  }

  /** Ends the blocking read in flight now (it resolves as if its time ran out). */
  #unblock(): void {
    if (this.#blockingUntil === 0 || this.#blockingId === undefined) return;
    this.#a.redis.client('UNBLOCK', this.#blockingId).catch(() => {}); // at worst the read ends at its BLOCK time
  }

  async ack(messages: readonly Entry[]): Promise<SettleResults> {
    try {
      await this.#a.redis.xack(this.#a.topic, this.#a.group, ...messages.map((m) => m.id));
    } catch (err) {
      throw toMqError(err, `acking on ${this.#a.topic}`);
    }
  }

  /**
   * Parks the entries until due: scored by due time in the group's parked set and handed to the
   * parking consumer (XCLAIM JUSTID: no delivery counted), so no lease expiry redelivers them early.
   * The redelivery pass that claims them counts the next delivery.
   */
  async nack(messages: readonly Entry[], delayMs: number): Promise<SettleResults> {
    const { redis, topic, group, keys } = this.#a;
    const due = Date.now() + delayMs;
    const ids = messages.map((m) => m.id);
    try {
      const results = await redis
        .multi()
        .zadd(keys.parked, ...ids.flatMap((id) => [due, id]))
        .xclaim(topic, group, PARKING_CONSUMER, 0, ...ids, 'JUSTID')
        .exec();
      const failed = results?.find(([err]) => err)?.[0];
      if (!results || failed) throw failed ?? new MqError('CONNECTION', 'nack transaction discarded');
    } catch (err) {
      throw toMqError(err, `nacking on ${topic}`);
    }
    this.#reclaimAt = Math.min(this.#reclaimAt, due);
    if (this.#blockingUntil > due + 5) this.#unblock();
  }

  async extend(messages: readonly Entry[]): Promise<SettleResults> {
    let mine: number[];
    try {
      mine = await this.#a.redis.mqkitExtend(this.#a.topic, this.#a.group, this.#consumer, ...messages.map((m) => m.id));
    } catch (err) {
      throw toMqError(err, `extending leases on ${this.#a.topic}`);
    }
    return mine.map((ok) => (ok ? undefined : new MqError('REJECTED', 'lease lost: another consumer claimed the entry', { retryable: false })));
  }

  async close(): Promise<void> {
    this.#unblock();
    try {
      await this.#a.redis.mqkitRelease(this.#a.topic, this.#a.group, this.#consumer);
    } catch {
      // the consumer name stays in the group; harmless
    } finally {
      this.#blocking.disconnect();
    }
  }
}

/** XGROUP CREATE … 0 MKSTREAM; an existing group is fine. */
async function createGroup(redis: Redis, topic: string, group: string): Promise<void> {
  try {
    await redis.xgroup('CREATE', topic, group, '0', 'MKSTREAM');
  } catch (err) {
    if (/^BUSYGROUP/.test((err as Error).message ?? '')) return;
    throw toMqError(err, `creating consumer group ${group} on ${topic}`);
  }
}
