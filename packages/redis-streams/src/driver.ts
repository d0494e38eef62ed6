import { MqError, redactUrl, type Adapter, type Capabilities, type Driver, type DriverReceiver, type DriverTopology, type DriverTransaction, type Envelope, type SendOutcome, type SubscriptionSpec } from '@mqkit/core/driver';
import { Redis, type ChainableCommander } from 'ioredis';
import { encodeFields } from './codec.ts';
import { execAll, toMqError } from './errors.ts';
import { DEFAULTS, parseSettings, parseSubscription, type Settings } from './options.ts';
import { RedisStreamsReceiver, type Connection } from './receiver.ts';
import { DELAY, EXTEND, RECLAIM, RELEASE } from './scripts.ts';
import { redisStreamsTopology } from './topology.ts';

/** Longest delay (publish and nack), in ms: 30 days. */
export const MAX_DELAY_MS = 30 * 24 * 3600_000;

/** What the adapter can do, for the given options (the same ones `connect` gets). */
export function redisStreamsCapabilities(options: { maxMessageBytes?: number; blockMs?: number } = {}): Capabilities {
  return {
    // Moved by a receiver's redelivery pass at the earliest due time it knows of, else every blockMs.
    delay: { kind: 'emulated', maxMs: MAX_DELAY_MS, precisionMs: options.blockMs ?? DEFAULTS.blockMs },
    // No partitions: competing consumers and redelivery cannot keep a key's later entries behind (README).
    ordering: 'none',
    transactions: true,
    maxMessageBytes: options.maxMessageBytes ?? DEFAULTS.maxMessageBytes,
    maxBatchSize: 1000,
    deliveryCount: 'native',
    topicPattern: /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,248}$/,
    maxHeaders: Number.POSITIVE_INFINITY,
  };
}

export class RedisStreamsDriver implements Driver {
  readonly name = 'redis-streams';
  readonly capabilities: Capabilities;
  /** The ioredis client (publishing and settling; each receiver has a blocking duplicate). */
  readonly native: Redis;
  /** Streams and consumer groups (topology.ts). */
  readonly topology: DriverTopology;
  readonly #redis: Connection;
  readonly #settings: Settings;
  readonly #receivers = new Set<DriverReceiver>();
  #closed = false;

  constructor(redis: Redis, settings: Settings) {
    this.native = this.#redis = redis as Connection;
    this.#settings = settings;
    this.capabilities = redisStreamsCapabilities(settings);
    this.topology = redisStreamsTopology(redis);
  }

  #open(): void {
    if (this.#closed) throw new MqError('CLOSED', 'redis-streams driver is closed');
  }

  /** Stages one XADD (delayed: the DELAY script) per envelope on a pipeline or MULTI. */
  #stage(commands: ChainableCommander, envelopes: readonly Envelope[]): void {
    const now = Date.now();
    const trim = this.#settings.trim(now);
    for (const e of envelopes) {
      const fields = encodeFields(e);
      if (e.delayMs && e.delayMs > 0) (commands as ChainableCommander & { mqkitDelay(...args: unknown[]): unknown }).mqkitDelay(`mqkit:delayed:${e.topic}`, `mqkit:delay:${e.topic}`, now + e.delayMs, ...fields);
      else commands.xadd(e.topic, ...trim, '*', ...fields);
    }
  }

  /** One pipeline per call: written in order on the one connection, so per-key order holds. */
  async send(envelopes: readonly Envelope[]): Promise<SendOutcome[]> {
    this.#open();
    const pipeline = this.#redis.pipeline();
    this.#stage(pipeline, envelopes);
    const results = await pipeline.exec().catch((err: unknown) => envelopes.map(() => [toMqError(err, 'publishing'), undefined] as const));
    return envelopes.map((e, i) => {
      const [err, id] = results?.[i] ?? [new MqError('CONNECTION', 'no reply'), undefined];
      return err ? { ok: false, error: toMqError(err, `publishing to ${e.topic}`) } : { ok: true, receipt: String(id) };
    });
  }

  async receiver(spec: SubscriptionSpec): Promise<DriverReceiver> {
    this.#open();
    const { topic, group } = spec;
    const settings = parseSubscription(spec.options, this.#settings);
    const receiver = await RedisStreamsReceiver.open({ redis: this.#redis, topic, group, settings, scope: `${this.#settings.origin}/${topic}\u0000${group}`, trim: this.#settings.trim, onClose: (r) => this.#receivers.delete(r) });
    this.#receivers.add(receiver);
    return receiver;
  }

  /** MULTI/EXEC: staged messages become visible together on commit (a command failing inside EXEC, e.g. WRONGTYPE, fails the commit but Redis has no rollback). */
  async beginTransaction(): Promise<DriverTransaction> {
    this.#open();
    const staged: Envelope[] = [];
    let done = false;
    const check = (finish: boolean): void => {
      if (done) throw new MqError('INVALID_MESSAGE', 'transaction already finished');
      done = finish;
    };
    return {
      send: async (envelopes) => void (check(false), staged.push(...envelopes)),
      commit: async () => {
        check(true);
        const multi = this.#redis.multi();
        this.#stage(multi, staged);
        await execAll(multi, 'committing a transaction');
      },
      abort: async () => check(true),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#receivers].map((r) => r.close()));
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}

/** The `redis://` / `rediss://` adapter (Redis Streams). Options: README.md and options.ts. */
export function redisStreams(): Adapter {
  return {
    schemes: ['redis', 'rediss'],
    async create(url, options, context) {
      const settings = parseSettings(url, options);
      const redis = new Redis(settings.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
      redis.on('error', (err: unknown) => context.logger.debug({ err, url: redactUrl(url) }, 'redis connection error'));
      for (const [name, lua, numberOfKeys] of [['mqkitDelay', DELAY, 2], ['mqkitReclaim', RECLAIM, 4], ['mqkitExtend', EXTEND, 1], ['mqkitRelease', RELEASE, 1]] as const) {
        redis.defineCommand(name, { numberOfKeys, lua });
      }
      await redis.connect().catch((err: unknown) => {
        redis.disconnect();
        throw toMqError(err, `connecting to ${redactUrl(url)}`);
      });
      return new RedisStreamsDriver(redis, settings);
    },
  };
}

/** Alias of {@link redisStreams}, the name `connect()` looks for when it loads this package by scheme. */
export const adapter = redisStreams;
