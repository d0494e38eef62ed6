import { createHash, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { BeginResult, DedupStore } from '@mqkit/core';
import { configError } from '@mqkit/core/driver';
import { toRedisMqError } from './errors.ts';
import { parseRedisDedupOptions, redisConnectionUrl, type RedisDedupOptions, type ResolvedRedisDedupOptions } from './options.ts';

/** The value of a done mark. A lease's value is its holder's token, `p:<uuid>`. */
const DONE = 'd';
const LEASE_PREFIX = 'p:';

// Atomic check-and-take: a live done mark → duplicate, a live lease → busy, else take the lease.
const BEGIN = `local v = redis.call('GET', KEYS[1])
if v == '${DONE}' then return 0 end
if v then return 1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 2`;

// Extend the lease only while it is still ours: a lapsed (gone) or taken-over lease stays lost.
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

// Write the done mark while the key is ours or free (our lease lapsed and nobody took it); never
// over another holder's lease or done mark.
const COMPLETE = `local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], '${DONE}', 'PX', ARGV[2])
return 1`;

// Drop the lease only if it is still ours: after our lease lapsed another consumer may hold it.
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** The commands the store uses; an ioredis `Redis` (or `Cluster`) has them. */
export type RedisLike = Pick<Redis, 'evalsha' | 'eval' | 'get' | 'pttl'>;

interface Script {
  source: string;
  sha: string;
}

const script = (source: string): Script => ({ source, sha: createHash('sha1').update(source).digest('hex') });
const SCRIPTS = { begin: script(BEGIN), renew: script(RENEW), complete: script(COMPLETE), release: script(RELEASE) };

const millis = (ms: number): string => String(Math.max(1, Math.floor(ms)));

/**
 * A core {@link DedupStore} in Redis, for `idempotent(store)`:
 * - `begin` takes a **processing lease** (`SET … PX leaseMs`, the value is the holder's token):
 *   if the consumer dies mid-handler, the key expires and a redelivery runs the handler again
 *   instead of being blocked forever;
 * - `renew` extends the lease (`PEXPIRE`) while the handler runs, only for its holder;
 * - `complete` turns it into a **done** mark kept for `ttlMs`; later deliveries are acked unseen;
 * - `release` (handler failed or handed the message back) drops the lease.
 * Each is a Lua compare-and-set on the holder's token: a holder whose lease lapsed and was taken
 * by another consumer can neither extend, drop nor overwrite the new holder's lease.
 *
 * The effect is at-least-once across a crash between the effect and `complete` (Redis cannot
 * commit with your database); use the Postgres store in the handler's transaction when the
 * effect is a database write and must happen exactly once.
 */
export class RedisDedupStore implements DedupStore {
  readonly #redis: RedisLike;
  readonly #options: ResolvedRedisDedupOptions;
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
    const token = `${LEASE_PREFIX}${randomUUID()}`;
    let result: unknown;
    try {
      result = await this.#eval(SCRIPTS.begin, this.keyOf(key), [token, millis(leaseMs)]);
    } catch (err) {
      throw toRedisMqError(err, 'redis dedup begin failed');
    }
    if (result === 0) return { state: 'duplicate' };
    if (result === 1) return { state: 'busy' };
    return { state: 'acquired', token };
  }

  async renew(key: string, token: string, leaseMs: number): Promise<boolean> {
    if (!isLeaseToken(token)) return false;
    try {
      return (await this.#eval(SCRIPTS.renew, this.keyOf(key), [token, millis(leaseMs)])) === 1;
    } catch (err) {
      throw toRedisMqError(err, 'redis dedup renew failed');
    }
  }

  async complete(key: string, token: string, ttlMs: number): Promise<boolean> {
    if (!isLeaseToken(token)) return false;
    try {
      return (await this.#eval(SCRIPTS.complete, this.keyOf(key), [token, millis(ttlMs)])) === 1;
    } catch (err) {
      throw toRedisMqError(err, 'redis dedup complete failed');
    }
  }

  async release(key: string, token: string): Promise<boolean> {
    if (!isLeaseToken(token)) return false;
    try {
      return (await this.#eval(SCRIPTS.release, this.keyOf(key), [token])) === 1;
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

/** Only a token `begin` handed out: anything else (e.g. the done value) must never match. */
function isLeaseToken(token: string): boolean {
  return typeof token === 'string' && token.startsWith(LEASE_PREFIX);
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
