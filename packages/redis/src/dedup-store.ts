import { createHash, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { BeginResult, DedupStore } from '@mqkit/core';
import { configError } from '@mqkit/core/driver';
import { toRedisMqError } from './errors.ts';
import { parseRedisDedupOptions, redisConnectionUrl, type RedisDedupOptions, type ResolvedRedisDedupOptions } from './options.ts';

/** The value of a done mark. A lease's value is `p:<token>`. */
const DONE = 'd';

// Atomic check-and-take: a live done mark → duplicate, a live lease → busy, else take the lease.
const BEGIN = `local v = redis.call('GET', KEYS[1])
if v == '${DONE}' then return 0 end
if v then return 1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 2`;

// Drop the lease only if it is still ours: after our lease lapsed another consumer may hold it.
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** The commands the store uses; an ioredis `Redis` (or `Cluster`) has them. */
export type RedisLike = Pick<Redis, 'evalsha' | 'eval' | 'set' | 'get' | 'pttl'>;

interface Script {
  source: string;
  sha: string;
}

const script = (source: string): Script => ({ source, sha: createHash('sha1').update(source).digest('hex') });
const SCRIPTS = { begin: script(BEGIN), release: script(RELEASE) };

/**
 * A core {@link DedupStore} in Redis, for `idempotent(store)`:
 * - `begin` takes a **processing lease** (`SET … PX leaseMs`): if the consumer dies mid-handler,
 *   the key expires and a redelivery runs the handler again instead of being blocked forever;
 * - `complete` turns it into a **done** mark kept for `ttlMs`; later deliveries are acked unseen;
 * - `release` (handler failed) drops the lease, but only this process's own lease (a token
 *   guards against deleting a lease another consumer took after ours lapsed).
 *
 * The effect is at-least-once across a crash between the effect and `complete` (Redis cannot
 * commit with your database); use the Postgres store in the handler's transaction when the
 * effect is a database write and must happen exactly once.
 */
export class RedisDedupStore implements DedupStore {
  readonly #redis: RedisLike;
  readonly #options: ResolvedRedisDedupOptions;
  /** Tokens of the leases this process holds, by key. */
  readonly #leases = new Map<string, string>();
  readonly #owned: Redis | undefined;

  constructor(redis: RedisLike, options: RedisDedupOptions = {}, owned?: Redis) {
    this.#redis = redis;
    this.#options = parseRedisDedupOptions(options);
    this.#owned = owned;
  }

  /** The Redis key a dedup key is stored under. */
  keyOf(key: string): string {
    return `${this.#options.prefix}${key}`;
  }

  async begin(key: string, leaseMs: number): Promise<BeginResult> {
    const token = `p:${randomUUID()}`;
    let result: unknown;
    try {
      result = await this.#eval(SCRIPTS.begin, this.keyOf(key), [token, String(Math.max(1, Math.floor(leaseMs)))]);
    } catch (err) {
      throw toRedisMqError(err, 'redis dedup begin failed');
    }
    if (result === 0) return 'duplicate';
    if (result === 1) return 'busy';
    this.#leases.set(key, token);
    return 'acquired';
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    this.#leases.delete(key);
    try {
      await this.#redis.set(this.keyOf(key), DONE, 'PX', Math.max(1, Math.floor(ttlMs)));
    } catch (err) {
      throw toRedisMqError(err, 'redis dedup complete failed');
    }
  }

  async release(key: string): Promise<void> {
    const token = this.#leases.get(key);
    this.#leases.delete(key);
    if (!token) return;
    try {
      await this.#eval(SCRIPTS.release, this.keyOf(key), [token]);
    } catch (err) {
      throw toRedisMqError(err, 'redis dedup release failed');
    }
  }

  /** What Redis holds for `key` now, and for how much longer (for diagnostics and tests). */
  async inspect(key: string): Promise<{ state: 'none' | 'processing' | 'done'; ttlMs: number }> {
    const k = this.keyOf(key);
    const [value, ttl] = await Promise.all([this.#redis.get(k), this.#redis.pttl(k)]);
    if (value === null) return { state: 'none', ttlMs: 0 };
    return { state: value === DONE ? 'done' : 'processing', ttlMs: Math.max(0, ttl) };
  }

  /** Closes the connection if {@link redisDedupStore} opened it. */
  async close(): Promise<void> {
    await this.#owned?.quit().catch(() => this.#owned?.disconnect());
  }

  async #eval(s: Script, key: string, args: string[]): Promise<unknown> {
    try {
      return await this.#redis.evalsha(s.sha, 1, key, ...args);
    } catch (err) {
      if (!/NOSCRIPT/.test((err as Error).message ?? '')) throw err;
      return this.#redis.eval(s.source, 1, key, ...args);
    }
  }
}

/**
 * Opens a Redis connection from a `redis://[:password@]host:port[/db][?prefix=…]` URL and returns
 * a store that closes it on `close()`. Errors carry the URL with its password redacted.
 */
export function redisDedupStore(url: string, options: RedisDedupOptions = {}): RedisDedupStore {
  if (!/^rediss?:\/\//i.test(url)) throw configError('redisDedupStore: the url must start with redis:// or rediss://', url);
  const resolved = parseRedisDedupOptions(options, url);
  // Fail a command fast while disconnected rather than queueing it for minutes: the handler fails,
  // the broker redelivers later.
  const redis = new Redis(redisConnectionUrl(url), { maxRetriesPerRequest: 2, enableOfflineQueue: true, lazyConnect: false });
  redis.on('error', () => {
    // ioredis reconnects by itself; command failures surface to callers as MqError CONNECTION.
  });
  return new RedisDedupStore(redis, resolved, redis);
}
