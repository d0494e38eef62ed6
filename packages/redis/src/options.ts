import { parseUrlOptions } from '@mqkit/core/driver';
import { z } from 'zod';

/** Options of the Redis dedup store (URL query parameters or explicit options). */
export const redisDedupOptionsSchema = z.object({
  /**
   * Prefix of every key the store writes, so that several services (or environments) can share
   * one Redis. @default "mqkit:dedup:"
   */
  prefix: z.string().max(200).default('mqkit:dedup:'),
}).strict();

export type RedisDedupOptions = z.input<typeof redisDedupOptionsSchema>;
export type ResolvedRedisDedupOptions = z.output<typeof redisDedupOptionsSchema>;

/**
 * Validates options; query parameters of `url` that are store options are read under them (the
 * rest stay for ioredis). Errors name the option, never its value.
 */
export function parseRedisDedupOptions(options: RedisDedupOptions = {}, url?: string): ResolvedRedisDedupOptions {
  const parsed = new URL(url ?? 'redis://localhost');
  const known = new Set(Object.keys(redisDedupOptionsSchema.shape));
  for (const name of [...parsed.searchParams.keys()]) if (!known.has(name)) parsed.searchParams.delete(name);
  return parseUrlOptions(redisDedupOptionsSchema, parsed, options as Record<string, unknown>);
}

/** The URL for ioredis: without the store's own query parameters. */
export function redisConnectionUrl(url: string): string {
  const parsed = new URL(url);
  for (const name of Object.keys(redisDedupOptionsSchema.shape)) parsed.searchParams.delete(name);
  return parsed.href;
}
