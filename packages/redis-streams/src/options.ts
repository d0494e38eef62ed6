/**
 * Options of the Redis Streams adapter: one strict zod schema for the connection (URL query
 * parameters or `connect(url, { options })`) and one for a subscription (`subscribe(…, { options })`).
 */
import { configError, parseOptions, parseUrlOptions } from '@mqkit/core/driver';
import { z } from 'zod';

/** A number given in code, or a decimal string from the URL query (nothing else is coerced). */
const num = (schema: z.ZodNumber) => z.preprocess((v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v), schema);
const flag = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);

const subscription = {
  /**
   * How long a received entry stays reserved to its consumer: an entry of a consumer that died is
   * claimed by another (XAUTOCLAIM) once idle this long. Core renews it every third. @default 30000
   */
  leaseMs: num(z.number().int().min(1000).max(24 * 3600_000)).optional(),
  /** Longest XREADGROUP BLOCK, in ms: how late another process's due entries may be seen. @default 1000 */
  blockMs: num(z.number().int().min(10).max(60_000)).optional(),
  /** Most entries one XREADGROUP / claim returns. @default 100 */
  batchSize: num(z.number().int().min(1).max(10_000)).optional(),
};

export const connectionSchema = z
  .object({
    ...subscription,
    /** Largest message (body + id + key + headers), in bytes. @default 1 MiB */
    maxMessageBytes: num(z.number().int().min(1024).max(512 * 1024 * 1024)).optional(),
    /** Trim each stream to about this many entries on publish (XADD MAXLEN ~). @default no trimming */
    maxLen: num(z.number().int().positive()).optional(),
    /** Trim entries older than this many ms on publish (XADD MINID ~). @default no trimming */
    maxAgeMs: num(z.number().int().positive()).optional(),
    /** Trim exactly (`=`) instead of approximately (`~`, cheaper). @default false */
    exactTrim: flag.optional(),
    /** Prefix of the sorted sets and side streams mqkit keeps beside each stream. @default "mqkit:" */
    keyPrefix: z.string().max(100).optional(),
  })
  .strict()
  .refine((o) => o.maxLen === undefined || o.maxAgeMs === undefined, { message: 'maxLen and maxAgeMs exclude each other (XADD takes one trimming policy)', path: ['maxAgeMs'] });

export const subscriptionSchema = z.object(subscription).strict();

export interface ReceiveSettings {
  readonly leaseMs: number;
  readonly blockMs: number;
  readonly batchSize: number;
}

export interface Settings extends ReceiveSettings {
  readonly maxMessageBytes: number;
  /** XADD trimming arguments, e.g. `['MAXLEN', '~', '1000']`; minimum id computed per call for MINID. */
  readonly trim: (now: number) => readonly string[];
  readonly keyPrefix: string;
  /** The URL for ioredis, without mqkit's own query parameters. */
  readonly redisUrl: string;
}

export const DEFAULTS = { leaseMs: 30_000, blockMs: 1_000, batchSize: 100, maxMessageBytes: 1024 * 1024 } as const;

/** Validates a `redis://` or `rediss://` URL and the options; CONFIG errors never echo secrets. */
export function parseSettings(url: string, options: Readonly<Record<string, unknown>>): Settings {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw configError('invalid Redis URL', '<unparseable url>', err);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw configError('the URL must start with redis:// or rediss://', parsed);
  if (!/^\/?\d*$/.test(parsed.pathname)) throw configError('the URL path must be a database number (redis://host:6379/0)', parsed);
  const known = new Set(Object.keys(connectionSchema.shape));
  const ours = new URL(parsed.href);
  for (const name of [...ours.searchParams.keys()]) if (!known.has(name)) ours.searchParams.delete(name);
  const o = parseUrlOptions(connectionSchema, ours, options);
  for (const name of known) parsed.searchParams.delete(name);
  const mode = o.exactTrim ? '=' : '~';
  const trim = (now: number): readonly string[] =>
    o.maxLen !== undefined ? ['MAXLEN', mode, String(o.maxLen)] : o.maxAgeMs !== undefined ? ['MINID', mode, `${now - o.maxAgeMs}-0`] : [];
  return {
    leaseMs: o.leaseMs ?? DEFAULTS.leaseMs,
    blockMs: o.blockMs ?? DEFAULTS.blockMs,
    batchSize: o.batchSize ?? DEFAULTS.batchSize,
    maxMessageBytes: o.maxMessageBytes ?? DEFAULTS.maxMessageBytes,
    trim,
    keyPrefix: o.keyPrefix ?? 'mqkit:',
    redisUrl: parsed.href,
  };
}

/** A subscription's settings: its own options over the connection's. */
export function parseSubscription(options: Readonly<Record<string, unknown>>, base: ReceiveSettings): ReceiveSettings {
  const o = parseOptions(subscriptionSchema, options, 'subscribe.options');
  return { leaseMs: o.leaseMs ?? base.leaseMs, blockMs: o.blockMs ?? base.blockMs, batchSize: o.batchSize ?? base.batchSize };
}
