import { randomUUID } from 'node:crypto';
import { parseUrlOptions } from '@mqkit/core/driver';
import { z } from 'zod';

const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be a plain SQL identifier');
const millis = z.coerce.number().int().nonnegative();

/** Where the tables live. Shared by the outbox and the dedup store. */
export const tableOptionsSchema = z.object({
  /** Schema of the tables. @default "public" */
  schema: identifier.default('public'),
  /** Outbox table. @default "mqkit_outbox" */
  table: identifier.default('mqkit_outbox'),
  /** Dedup table. @default "mqkit_processed" */
  dedupTable: identifier.default('mqkit_processed'),
  /** NOTIFY channel the outbox trigger signals on. @default the outbox table's name */
  channel: identifier.optional(),
});

/** Options of {@link PostgresOutboxStore}, validated by {@link parseOutboxOptions}. */
export const outboxOptionsSchema = tableOptionsSchema.extend({
  /**
   * What happens to a row the broker confirmed: `mark` sets `published_at` and keeps it for
   * `retentionMs` (an audit trail, and cheap to debug); `delete` removes it at once.
   * @default "mark"
   */
  onPublished: z.enum(['mark', 'delete']).default('mark'),
  /**
   * How long published rows are kept when `onPublished` is `mark`; the relay's maintenance (core
   * `maintenanceIntervalMs`, default 60 s) deletes older ones. @default 3600000 (1 h)
   */
  retentionMs: millis.default(3_600_000),
  /** Rows deleted per cleanup statement, so cleanup never holds long locks. @default 5000 */
  cleanupBatchSize: z.coerce.number().int().positive().default(5_000),
  /** Name this relay writes in `claimed_by` (for debugging stuck claims). @default random */
  relayId: z.string().min(1).max(200).default(() => `relay-${randomUUID().slice(0, 8)}`),
  /**
   * Most rows of one key per claim (0 = no limit). Set 1 for adapters whose driver sends the
   * batches of one publish call concurrently (SQS: batches of 10 as parallel requests), where two
   * rows of a key in different batches could overtake each other. Costs a window over the
   * backlog per claim. @default 0
   */
  maxPerKey: z.coerce.number().int().nonnegative().default(0),
  /** LISTEN for NOTIFY wake-ups (falls back to polling when off or disconnected). @default true */
  listen: z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]).default(true),
});

export type TableOptions = z.input<typeof tableOptionsSchema>;
export type ResolvedTableOptions = z.output<typeof tableOptionsSchema>;
/** Options of the Postgres outbox store (all optional; defaults in the TSDoc of each field). */
export type PostgresOutboxOptions = z.input<typeof outboxOptionsSchema>;
export type ResolvedOutboxOptions = z.output<typeof outboxOptionsSchema>;

/** Validates outbox options; query parameters of `url` (if given) are read under them. */
export function parseOutboxOptions(options: PostgresOutboxOptions = {}, url?: string): ResolvedOutboxOptions {
  return parseWithUrl(outboxOptionsSchema, options, url);
}

/** Validates table options; query parameters of `url` (if given) are read under them. */
export function parseTableOptions(options: TableOptions = {}, url?: string): ResolvedTableOptions {
  return parseWithUrl(tableOptionsSchema, options, url);
}

function parseWithUrl<S extends z.ZodType>(schema: S, options: object, url: string | undefined): z.output<S> {
  const parsed = new URL(url ?? 'postgres://localhost');
  // Only our own keys: the rest of the query (sslmode, application_name, …) belongs to pg.
  const known = new Set(Object.keys((schema as unknown as z.ZodObject).shape));
  for (const name of [...parsed.searchParams.keys()]) if (!known.has(name)) parsed.searchParams.delete(name);
  return parseUrlOptions(schema, parsed, options as Record<string, unknown>);
}

/**
 * The connection string for `pg`: the URL without mqkit's own query parameters (pg would pass
 * unknown ones to the server as startup options and fail).
 */
export function pgConnectionString(url: string): string {
  const parsed = new URL(url);
  const ours = new Set([...Object.keys(outboxOptionsSchema.shape)]);
  for (const name of [...parsed.searchParams.keys()]) if (ours.has(name)) parsed.searchParams.delete(name);
  return parsed.href;
}
