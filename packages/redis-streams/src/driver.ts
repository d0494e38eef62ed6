import {
  MqError,
  configError,
  redactUrl,
  type Adapter,
  type Capabilities,
  type Driver,
  type DriverContext,
  type DriverReceiver,
  type DriverTransaction,
  type Envelope,
  type SendOutcome,
  type SubscriptionSpec,
} from '@mqkit/core/driver';
import { Redis, type ChainableCommander } from 'ioredis';
import { encodeFields } from './codec.ts';
import { toMqError } from './errors.ts';
import { DEFAULTS, parseSettings, parseSubscription, type Settings } from './options.ts';
import { RedisStreamsReceiver, type ScriptCommands } from './receiver.ts';
import { DELAY, EXTEND, RECLAIM, RELEASE } from './scripts.ts';

/** Longest delay (publish and nack), in ms: 30 days. */
export const MAX_DELAY_MS = 30 * 24 * 3600_000;

/** What the adapter can do, for the given options (the same ones `connect` gets). */
export function redisStreamsCapabilities(options: { maxMessageBytes?: number; blockMs?: number } = {}): Capabilities {
  return {
    // Due entries are moved from the sorted set by a receiver's redelivery pass, which runs at the
    // earliest due time it knows of, else every blockMs.
    delay: { kind: 'emulated', maxMs: MAX_DELAY_MS, precisionMs: options.blockMs ?? DEFAULTS.blockMs },
    // One stream has no partitions: competing consumers, and redelivery after a nack or a lease
    // expiry, cannot keep a key's later entries behind an earlier one (see README).
    ordering: 'none',
    transactions: true,
    maxMessageBytes: options.maxMessageBytes ?? DEFAULTS.maxMessageBytes,
    maxBatchSize: 1000,
    deliveryCount: 'native',
    topicPattern: /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,248}$/,
    maxHeaders: Number.POSITIVE_INFINITY,
  };
}

type Connection = Redis & ScriptCommands;
type Staged = ChainableCommander & { mqkitDelay(...args: Array<string | number | Buffer>): ChainableCommander };

export class RedisStreamsDriver implements Driver {
  readonly name = 'redis-streams';
  readonly capabilities: Capabilities;
  readonly #redis: Connection;
  readonly #settings: Settings;
  readonly #origin: string;
  readonly #receivers = new Set<DriverReceiver>();
  #closed = false;

  constructor(redis: Redis, settings: Settings, origin: string) {
    this.#redis = redis as Connection;
    this.#settings = settings;
    this.#origin = origin;
    this.capabilities = redisStreamsCapabilities(settings);
  }

  /** The ioredis client (publishing and settling; each receiver has a blocking duplicate). */
  get native(): Redis {
    return this.#redis;
  }

  #key(kind: 'parked' | 'delay' | 'delayed', topic: string, group?: string): string {
    return `${this.#settings.keyPrefix}${kind}:${topic}${group === undefined ? '' : `:${group}`}`;
  }

  /** Stages one XADD (or, delayed, the DELAY script) per envelope on a pipeline or MULTI. */
  #stage(commands: ChainableCommander, envelopes: readonly Envelope[]): void {
    const now = Date.now();
    const trim = this.#settings.trim(now);
    for (const e of envelopes) {
      const fields = encodeFields(e);
      if (e.delayMs && e.delayMs > 0) (commands as Staged).mqkitDelay(this.#key('delayed', e.topic), this.#key('delay', e.topic), now + e.delayMs, ...fields);
      else commands.xadd(e.topic, ...trim, '*', ...fields);
    }
  }

  /** One pipeline per call: written in order on the one connection, so per-key order holds. */
  async send(envelopes: readonly Envelope[]): Promise<SendOutcome[]> {
    if (this.#closed) throw new MqError('CLOSED', 'redis-streams driver is closed');
    const pipeline = this.#redis.pipeline();
    this.#stage(pipeline, envelopes);
    let results: Array<[Error | null, unknown]> | null;
    try {
      results = await pipeline.exec();
    } catch (err) {
      const error = toMqError(err, 'publishing');
      return envelopes.map(() => ({ ok: false, error }));
    }
    return envelopes.map((e, i) => {
      const [err, id] = results?.[i] ?? [new MqError('CONNECTION', 'no reply'), undefined];
      return err ? { ok: false, error: toMqError(err, `publishing to ${e.topic}`) } : { ok: true, receipt: String(id) };
    });
  }

  async receiver(spec: SubscriptionSpec): Promise<DriverReceiver> {
    if (this.#closed) throw new MqError('CLOSED', 'redis-streams driver is closed');
    const settings = parseSubscription(spec.options, this.#settings);
    const receiver = await RedisStreamsReceiver.open({
      redis: this.#redis,
      topic: spec.topic,
      group: spec.group,
      keys: { parked: this.#key('parked', spec.topic, spec.group), delay: this.#key('delay', spec.topic), delayed: this.#key('delayed', spec.topic) },
      settings,
      scope: `${this.#origin}/${spec.topic}\u0000${spec.group}`,
      trim: this.#settings.trim,
    });
    this.#receivers.add(receiver);
    const close = receiver.close.bind(receiver);
    receiver.close = () => {
      this.#receivers.delete(receiver);
      return close();
    };
    return receiver;
  }

  /** MULTI/EXEC: the staged XADDs become visible together on commit, or not at all. */
  async beginTransaction(): Promise<DriverTransaction> {
    const staged: Envelope[] = [];
    let done = false;
    const finish = (): void => {
      if (done) throw new MqError('INVALID_MESSAGE', 'transaction already finished');
      done = true;
    };
    return {
      send: async (envelopes) => {
        if (done) throw new MqError('INVALID_MESSAGE', 'transaction already finished');
        staged.push(...envelopes);
      },
      commit: async () => {
        finish();
        const multi = this.#redis.multi();
        this.#stage(multi, staged);
        try {
          const results = await multi.exec();
          if (!results) throw new MqError('CONNECTION', 'transaction discarded');
          const failed = results.find(([err]) => err);
          if (failed) throw failed[0];
        } catch (err) {
          throw toMqError(err, 'committing a transaction');
        }
      },
      abort: async () => finish(),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#receivers].map((r) => r.close()));
    try {
      await this.#redis.quit();
    } catch {
      this.#redis.disconnect();
    }
  }
}

/**
 * The `redis://` / `rediss://` adapter (Redis Streams). Options: see README.md and options.ts.
 */
export function redisStreams(): Adapter {
  return {
    schemes: ['redis', 'rediss'],
    async create(url: string, options: Readonly<Record<string, unknown>>, context: DriverContext): Promise<Driver> {
      const settings = parseSettings(url, options);
      const parsed = new URL(settings.redisUrl);
      const origin = `${parsed.protocol}//${parsed.host}/${parsed.pathname.replace(/^\//, '') || '0'}`;
      let redis: Redis;
      try {
        redis = new Redis(settings.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
      } catch (err) {
        throw configError('invalid Redis URL or options', url, err);
      }
      redis.on('error', (err: unknown) => context.logger.debug({ err, url: redactUrl(url) }, 'redis connection error'));
      redis.defineCommand('mqkitDelay', { numberOfKeys: 2, lua: DELAY });
      redis.defineCommand('mqkitReclaim', { numberOfKeys: 4, lua: RECLAIM });
      redis.defineCommand('mqkitExtend', { numberOfKeys: 1, lua: EXTEND });
      redis.defineCommand('mqkitRelease', { numberOfKeys: 1, lua: RELEASE });
      try {
        await redis.connect();
      } catch (err) {
        redis.disconnect();
        const error = toMqError(err, `connecting to ${redactUrl(url)}`);
        throw error.code === 'INTERNAL' ? new MqError('CONNECTION', error.message, { cause: err }) : error;
      }
      return new RedisStreamsDriver(redis, settings, origin);
    },
  };
}

/** Alias of {@link redisStreams}, the name `connect()` looks for when it loads this package by scheme. */
export const adapter = redisStreams;
