/**
 * Options of the Redis Streams adapter: one strict zod schema for the connection (URL query
 * parameters or `connect(url, { options })`) and one for a subscription (`subscribe(…, { options })`).
 */
import { configError, parseOptions, parseUrlOptions } from '@mqkit/core/driver';
import { z } from 'zod';

/** A number given in code, or a decimal string from the URL query (nothing else is coerced). */
const num = (schema: z.ZodNumber) => z.preprocess((v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v), schema);

const receive = {
  /** Lease: an entry idle this long (its consumer died) is claimed by another (XAUTOCLAIM). @default 30000 */
  leaseMs: num(z.number().int().min(1000).max(24 * 3600_000)).optional(),
  /** Longest XREADGROUP BLOCK, in ms: how late another process's due entries may be seen. @default 1000 */
  blockMs: num(z.number().int().min(10).max(60_000)).optional(),
  /** Most entries one XREADGROUP or redelivery pass returns. @default 100 */
  batchSize: num(z.number().int().min(1).max(10_000)).optional(),
};

const connectionSchema = z
  .object({
    ...receive,
    /** Largest message (body + id + key + headers), in bytes. @default 1 MiB */
    maxMessageBytes: num(z.number().int().min(1024).max(512 * 1024 * 1024)).optional(),
    /** Trim each stream to about this many entries on publish (XADD MAXLEN ~). @default no trimming */
    maxLen: num(z.number().int().positive()).optional(),
    /** Trim entries older than this many ms on publish (XADD MINID ~). @default no trimming */
    maxAgeMs: num(z.number().int().positive()).optional(),
  })
  .strict()
  .refine((o) => o.maxLen === undefined || o.maxAgeMs === undefined, { message: 'maxLen and maxAgeMs exclude each other (XADD takes one trimming policy)', path: ['maxAgeMs'] });

export type RedisStreamsOptions = z.input<typeof connectionSchema>;
export type ReceiveSettings = { readonly leaseMs: number; readonly blockMs: number; readonly batchSize: number };
/**
 * `trim(now)`: the XADD trimming arguments (e.g. `MAXLEN ~ 1000`) or none; `redisUrl`: for ioredis, without mqkit's
 * options; `origin`: where entry ids are unique, the server and database (never the password).
 */
export type Settings = ReceiveSettings & { readonly maxMessageBytes: number; readonly trim: (now: number) => readonly string[]; readonly redisUrl: string; readonly origin: string };

export const DEFAULTS = { leaseMs: 30_000, blockMs: 1_000, batchSize: 100, maxMessageBytes: 1024 * 1024 } as const;

/** Validates a `redis://` or `rediss://` URL and the options; CONFIG errors never echo secrets. */
export function parseSettings(url: string, options: Readonly<Record<string, unknown>>): Settings {
  if (!URL.canParse(url)) throw configError('invalid Redis URL', '<unparseable url>');
  const parsed = new URL(url);
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw configError('the URL must start with redis:// or rediss://', parsed);
  if (!/^\/?\d*$/.test(parsed.pathname)) throw configError('the URL path must be a database number (redis://host:6379/0)', parsed);
  const known = new Set(Object.keys(connectionSchema.shape));
  const ours = new URL(parsed.href);
  for (const name of [...parsed.searchParams.keys()]) (known.has(name) ? parsed : ours).searchParams.delete(name);
  const o = parseUrlOptions(connectionSchema, ours, options);
  return {
    leaseMs: o.leaseMs ?? DEFAULTS.leaseMs,
    blockMs: o.blockMs ?? DEFAULTS.blockMs,
    batchSize: o.batchSize ?? DEFAULTS.batchSize,
    maxMessageBytes: o.maxMessageBytes ?? DEFAULTS.maxMessageBytes,
    trim: (now) => (o.maxLen !== undefined ? ['MAXLEN', '~', String(o.maxLen)] : o.maxAgeMs !== undefined ? ['MINID', '~', `${now - o.maxAgeMs}-0`] : []),
    redisUrl: parsed.href,
    origin: `${parsed.protocol}//${parsed.host}/${parsed.pathname.slice(1) || '0'}`,
  };
}

/** A subscription's settings: its own options over the connection's. */
export function parseSubscription(options: Readonly<Record<string, unknown>>, base: ReceiveSettings): ReceiveSettings {
  const o = parseOptions(z.object(receive).strict(), options, 'subscribe.options');
  return { leaseMs: o.leaseMs ?? base.leaseMs, blockMs: o.blockMs ?? base.blockMs, batchSize: o.batchSize ?? base.batchSize };
}
