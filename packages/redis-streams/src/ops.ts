/**
 * Operations (`mqkit dlq`, `mqkit lag`) on Redis Streams, on a connection of their own.
 *
 * A topic is a stream, so a dead-letter topic D is the stream D: read with XRANGE (`peek`:
 * nothing changes, no group involved), removed by entry id with XDEL after the replay's publish
 * resolved, purged with XTRIM MAXLEN 0 (the stream and any groups on it stay). A group's backlog
 * is XINFO GROUPS: `lag` (entries not yet delivered to the group) as ready and `pending` (the
 * PEL: delivered and unacked, nacked entries parked for their retry included) as in flight.
 */
import { Redis } from 'ioredis';
import { MqError, redactUrl, type BacklogRow, type DriverOps, type MessageBatch, type OpsAdapter, type StoredMessage } from '@mqkit/core/driver';
import { decodeFields } from './codec.ts';
import { toMqError } from './errors.ts';
import { parseSettings } from './options.ts';

/** The Redis Streams adapter's operations, for the same URLs as {@link redisStreams}. */
export function ops(): OpsAdapter {
  return {
    schemes: ['redis', 'rediss'],
    async create(url, options) {
      const settings = parseSettings(url, options);
      const redis = new Redis(settings.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
      redis.on('error', () => {}); // surfaces as the failing command's error
      await redis.connect().catch((err: unknown) => {
        redis.disconnect();
        throw toMqError(err, `connecting to ${redactUrl(url)}`);
      });
      return new RedisStreamsOps(redis);
    },
  };
}

/** XINFO GROUPS answers flat [name, value, …] lists. */
function fieldsOf(reply: unknown): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out.set(String(reply[i]), reply[i + 1]);
  return out;
}

class RedisStreamsOps implements DriverOps {
  readonly name = 'redis-streams';
  readonly capabilities = { read: 'peek', remove: 'any', listTopics: true, listGroups: true } as const;
  readonly #redis: Redis;

  constructor(redis: Redis) {
    this.#redis = redis;
  }

  async #run<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw toMqError(err, what);
    }
  }

  /** NOT_FOUND unless `topic` is a stream. */
  async #stream(topic: string): Promise<void> {
    const type = await this.#run(`TYPE ${topic}`, () => this.#redis.type(topic));
    if (type === 'none') throw new MqError('NOT_FOUND', `stream "${topic}" does not exist`, { details: { topic } });
    if (type !== 'stream') throw new MqError('CONFIG', `key "${topic}" holds a ${type}, not a stream`, { details: { topic } });
  }

  async listTopics(): Promise<readonly string[]> {
    const names: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.#run('SCAN', () => this.#redis.scan(cursor, 'COUNT', 1000, 'TYPE', 'stream'));
      cursor = next;
      // mqkit's own side streams (delayed publishes) are no topics.
      for (const k of keys) if (!k.startsWith('mqkit:')) names.push(k);
    } while (cursor !== '0');
    return [...new Set(names)].sort();
  }

  async depth(topic: string): Promise<number> {
    await this.#stream(topic);
    return this.#run(`XLEN ${topic}`, () => this.#redis.xlen(topic));
  }

  async read(topic: string, limit: number): Promise<MessageBatch> {
    await this.#stream(topic);
    const entries = await this.#run(`XRANGE ${topic}`, () => this.#redis.xrangeBuffer(topic, '-', '+', 'COUNT', limit));
    const idOf = new Map<StoredMessage, string>();
    const messages = entries.map(([rawId, fields]) => {
      const entryId = rawId.toString();
      const message: StoredMessage = { envelope: decodeFields(topic, entryId, fields), position: entryId };
      idOf.set(message, entryId);
      return message;
    });
    return {
      messages,
      remove: async (some) => {
        const ids = some.map((m) => idOf.get(m));
        if (ids.some((id) => id === undefined)) throw new MqError('INVALID_MESSAGE', 'remove: a message not read in this batch');
        if (ids.length > 0) await this.#run(`XDEL ${topic}`, () => this.#redis.xdel(topic, ...(ids as string[])));
      },
      release: async () => {},
    };
  }

  async purge(topic: string): Promise<number> {
    await this.#stream(topic);
    return this.#run(`XTRIM ${topic}`, () => this.#redis.xtrim(topic, 'MAXLEN', 0));
  }

  async backlog(topic: string | undefined, group: string | undefined): Promise<readonly BacklogRow[]> {
    const topics = topic === undefined ? await this.listTopics() : [topic];
    const rows: BacklogRow[] = [];
    for (const t of topics) {
      if (topic !== undefined) await this.#stream(t);
      const groups = (await this.#run(`XINFO GROUPS ${t}`, () => this.#redis.xinfo('GROUPS', t))) as unknown[];
      for (const g of groups.map(fieldsOf)) {
        const name = String(g.get('name'));
        if (group !== undefined && name !== group) continue;
        const pending = Number(g.get('pending') ?? 0);
        const lag = g.get('lag');
        // lag is nil when Redis cannot tell (entries deleted inside the group's range): count them.
        const ready = lag === null || lag === undefined ? await this.#undelivered(t, String(g.get('last-delivered-id'))) : Number(lag);
        rows.push({ topic: t, group: name, backlog: ready + pending, ready, inFlight: pending, consumers: Number(g.get('consumers') ?? 0) });
      }
    }
    if (topic !== undefined && group !== undefined && rows.length === 0) {
      throw new MqError('NOT_FOUND', `group "${group}" does not exist on stream "${topic}"`, { details: { topic, group } });
    }
    return rows;
  }

  /** Entries after the group's last delivered id. */
  async #undelivered(topic: string, lastId: string): Promise<number> {
    const entries = await this.#run(`XRANGE ${topic}`, () => this.#redis.xrange(topic, `(${lastId}`, '+'));
    return entries.length;
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
