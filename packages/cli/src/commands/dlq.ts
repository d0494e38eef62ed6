/**
 * `mqkit dlq ls|show|replay|purge`: dead-letter topics through the adapter's operations
 * (@mqkit/core/driver's DriverOps). Replay republishes with the client's reliable publish,
 * keeping each message's id, key and application headers, and removes a message from the
 * dead-letter topic only after its republish was confirmed.
 */
import { z } from 'zod';
import { MqError, redactUrl, type Client, type Codec } from '@mqkit/core';
import { applicationHeaders, opsUnsupported, parseOptions, type DriverOps, type MessageBatch } from '@mqkit/core/driver';
import { brokerUrl, openClient, openOps } from '../backend.ts';
import { output, type CommandContext } from '../context.ts';
import { countReasons, deadLetters, deadLetterTopicOf, matching, payloadPreview, type DeadLetter } from '../dead-letters.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { parseRate, RateLimiter } from '../rate.ts';
import { cell, formatAge, formatTable } from '../table.ts';

const count = (min: number) => z.coerce.number().int().min(min);

/** Messages read per pass to count reasons or find matches. */
const DEFAULT_SCAN = 1000;

const lsSchema = z.object({ group: z.string().min(1).optional(), scan: count(1).default(DEFAULT_SCAN) }).strict();
const showSchema = z
  .object({ limit: count(1).default(20), reason: z.string().min(1).optional(), group: z.string().min(1).optional(), scan: count(1).default(DEFAULT_SCAN) })
  .strict();
const replaySchema = z
  .object({
    to: z.string().min(1).default('original'),
    reason: z.string().min(1).optional(),
    group: z.string().min(1).optional(),
    limit: count(1).optional(),
    dryRun: z.boolean().default(false),
    rate: z.string().optional(),
    scan: count(1).default(DEFAULT_SCAN),
  })
  .strict();
const purgeSchema = z.object({ yes: z.boolean().default(false), group: z.string().min(1).optional() }).strict();

async function withOps<T>(ctx: CommandContext, use: (ops: DriverOps, url: string) => Promise<T>): Promise<T> {
  const url = brokerUrl(ctx.flags.url, ctx.io.env);
  const ops = await openOps(url);
  try {
    return await use(ops, url);
  } finally {
    await ops.close().catch(() => {});
  }
}

/** Reads up to `scan` messages and gives them back at once: nothing is consumed. */
async function peek(ops: DriverOps, topic: string, scan: number, group: string | undefined): Promise<DeadLetter[]> {
  const batch = await ops.read(topic, scan, group);
  try {
    return deadLetters(batch.messages);
  } finally {
    await batch.release();
  }
}

/** One dead-letter topic in `dlq ls --json`. */
export interface DlqSummary {
  topic: string;
  /** Messages in the dead-letter topic (all of them, whatever --group). */
  depth: number;
  /** Messages read to count reasons (at most --scan). */
  scanned: number;
  /** Of those, the ones matching --group (all without it). */
  matched: number;
  /** Age of the oldest matching message in ms (null: none). */
  oldestAgeMs: number | null;
  /** ISO time the oldest matching message was dead-lettered (null: none). */
  oldestAt: string | null;
  /** Matching messages per dead-letter reason, most frequent first. */
  reasons: Record<string, number>;
}

/** `dlq ls --json`. */
export interface DlqLsDocument {
  adapter: string;
  /** --group, or null. */
  group: string | null;
  deadLetterTopics: DlqSummary[];
}

export async function dlqLs(ctx: CommandContext, topicArg: string | undefined, raw: unknown): Promise<ExitCode> {
  const opts = parseOptions(lsSchema, raw, 'dlq ls');
  return withOps(ctx, async (ops) => {
    let topics: string[];
    if (topicArg !== undefined) topics = [deadLetterTopicOf(topicArg)];
    else if (!ops.capabilities.listTopics) throw opsUnsupported(ops.name, 'list topics', 'name the topic: mqkit dlq ls <topic>');
    else topics = (await ops.listTopics()).filter((t) => t.endsWith('-dlq')).sort();
    const summaries: DlqSummary[] = [];
    for (const topic of topics) {
      let depth: number;
      try {
        depth = await ops.depth(topic, opts.group);
      } catch (err) {
        // Listed, but nothing to read there: gone since the listing, or a topic that keeps no
        // store of its own (RabbitMQ's dead-letter exchange with `deadLetterQueue: false`). A topic
        // named on the command line still fails NOT_FOUND.
        if (topicArg === undefined && MqError.is(err, 'NOT_FOUND')) continue;
        throw err;
      }
      const letters = depth === 0 ? [] : await peek(ops, topic, opts.scan, opts.group);
      // After the read: a message dead-lettered while it ran is not "in the future".
      const now = Date.now();
      const matched = matching(letters, { group: opts.group });
      const oldest = matched.reduce<number | undefined>((min, l) => (min === undefined || l.info.deadLetteredAt < min ? l.info.deadLetteredAt : min), undefined);
      summaries.push({
        topic,
        depth,
        scanned: letters.length,
        matched: matched.length,
        oldestAgeMs: oldest === undefined ? null : Math.max(0, now - oldest),
        oldestAt: oldest === undefined ? null : new Date(oldest).toISOString(),
        reasons: countReasons(matched),
      });
    }
    output<DlqLsDocument>(ctx, { adapter: ops.name, group: opts.group ?? null, deadLetterTopics: summaries }, () => {
      if (summaries.length === 0) return 'no dead-letter topics (names ending in -dlq)\n';
      const rows = summaries.map((s) => [
        s.topic,
        String(s.depth),
        opts.group === undefined ? '' : String(s.matched),
        formatAge(s.oldestAgeMs ?? undefined),
        Object.entries(s.reasons).map(([r, n]) => `${r}=${n}`).join(' ') + (s.scanned < s.depth ? ` (first ${s.scanned})` : ''),
      ]);
      const columns = [
        { header: 'TOPIC' },
        { header: 'DEPTH', align: 'right' as const },
        { header: opts.group === undefined ? '' : `GROUP ${opts.group}`, align: 'right' as const },
        { header: 'OLDEST', align: 'right' as const },
        { header: 'REASONS' },
      ];
      if (opts.group === undefined) {
        columns.splice(2, 1);
        for (const r of rows) r.splice(2, 1);
      }
      return formatTable(columns, rows);
    });
    return EXIT.OK;
  });
}

/** One message in `dlq show --json`. */
export interface DlqMessage {
  id: string;
  position: string | null;
  key: string | null;
  reason: string;
  error: string | null;
  attempts: number | null;
  originalTopic: string | null;
  originalGroup: string | null;
  deadLetteredAt: string;
  headers: Record<string, string>;
  payloadBytes: number;
  payloadPreview: string;
}

/** `dlq show --json`. */
export interface DlqShowDocument {
  adapter: string;
  topic: string;
  depth: number;
  /** How the broker was read (see OpsCapabilities.read): `peek` or `hold`. */
  read: 'peek' | 'hold';
  messages: DlqMessage[];
}

const toJsonMessage = (l: DeadLetter): DlqMessage => {
  const e = l.message.envelope;
  return {
    id: e.id,
    position: l.message.position ?? null,
    key: e.key ?? null,
    reason: l.info.reason,
    error: l.info.error ?? null,
    attempts: l.info.attempts ?? null,
    originalTopic: l.info.originalTopic ?? null,
    originalGroup: l.info.originalGroup ?? null,
    deadLetteredAt: new Date(l.info.deadLetteredAt).toISOString(),
    headers: { ...e.headers },
    payloadBytes: e.body.byteLength,
    payloadPreview: payloadPreview(e.body),
  };
};

export async function dlqShow(ctx: CommandContext, topicArg: string, raw: unknown): Promise<ExitCode> {
  const opts = parseOptions(showSchema, raw, 'dlq show');
  const topic = deadLetterTopicOf(topicArg);
  return withOps(ctx, async (ops) => {
    const depth = await ops.depth(topic, opts.group);
    const letters = depth === 0 ? [] : await peek(ops, topic, Math.max(opts.scan, opts.limit), opts.group);
    const shown = matching(letters, opts).slice(0, opts.limit).map(toJsonMessage);
    output<DlqShowDocument>(ctx, { adapter: ops.name, topic, depth, read: ops.capabilities.read, messages: shown }, () => {
      const head = `${topic}: ${depth} message(s), showing ${shown.length}${ops.capabilities.read === 'hold' ? ' (read by holding them briefly: each counts a delivery)' : ''}\n`;
      return (
        head +
        shown
          .map((m, i) =>
            [
              `\n#${i + 1} id ${m.id}${m.position === null ? '' : `  at ${m.position}`}${m.key === null ? '' : `  key ${m.key}`}`,
              `  reason    ${m.reason}${m.attempts === null ? '' : ` after ${m.attempts} attempt(s)`}`,
              `  error     ${m.error ?? '-'}`,
              `  from      ${m.originalTopic ?? '-'} / group ${m.originalGroup ?? '-'}`,
              `  dead since ${m.deadLetteredAt}`,
              `  headers   ${JSON.stringify(m.headers)}`,
              `  payload   (${m.payloadBytes} bytes) ${m.payloadPreview}`,
            ].join('\n'),
          )
          .join('\n') +
        (shown.length > 0 ? '\n' : '')
      );
    });
    return EXIT.OK;
  });
}

/** One message in `dlq replay --json`. */
export interface ReplayedMessage {
  id: string;
  to: string | null;
  status: 'replayed' | 'would-replay' | 'failed';
  error?: string;
}

/** `dlq replay --json`. */
export interface DlqReplayDocument {
  adapter: string;
  topic: string;
  dryRun: boolean;
  replayed: number;
  failed: number;
  messages: ReplayedMessage[];
}

/** `dlq purge --json`. */
export interface DlqPurgeDocument {
  adapter: string;
  topic: string;
  /** How many went (approximate on SQS), or null when the broker does not tell. */
  purged: number | null;
}

/** Publishes the bytes as they are, under the content type they had. */
const passThrough = (contentType: string): Codec<Uint8Array> => ({ contentType, encode: (b) => b, decode: (b) => b });

export async function dlqReplay(ctx: CommandContext, topicArg: string, raw: unknown): Promise<ExitCode> {
  const opts = parseOptions(replaySchema, raw, 'dlq replay');
  const rate = new RateLimiter(opts.rate === undefined ? undefined : parseRate(opts.rate));
  const topic = deadLetterTopicOf(topicArg);
  if (opts.to === topic) throw new MqError('CONFIG', `--to ${opts.to}: that is the dead-letter topic itself`);
  return withOps(ctx, async (ops, url) => {
    if (!opts.dryRun && ops.capabilities.remove === 'none') throw opsUnsupported(ops.name, 'replay', 'it cannot remove a message from the dead-letter topic after republishing it (use --dry-run to see them)');
    const depth = await ops.depth(topic, opts.group);
    // At most what was there at the start: a consumer still failing sends replayed messages back.
    const budget = Math.min(opts.limit ?? depth, depth);
    const results: ReplayedMessage[] = [];
    let client: Client | undefined;
    try {
      if (!opts.dryRun && budget > 0) client = await openClient(url, { publish: { timeoutMs: ctx.flags.timeout } });
      let failed = false;
      while (results.length < budget && !failed) {
        const batch = await ops.read(topic, passSize(opts, budget - results.length, ops.capabilities.read), opts.group);
        let done = 0;
        try {
          const letters = deadLetters(batch.messages);
          const chosen = matching(letters, opts).slice(0, budget - results.length);
          if (ops.capabilities.remove === 'prefix' && !opts.dryRun && chosen.some((l, i) => letters[i] !== l)) {
            throw opsUnsupported(ops.name, 'replay with this filter', 'it removes messages only from the oldest on; replay without --reason/--group, or --dry-run to see them');
          }
          for (const letter of chosen) {
            const to = opts.to === 'original' ? letter.info.originalTopic : opts.to;
            const id = letter.message.envelope.id;
            if (to === undefined) {
              results.push({ id, to: null, status: 'failed', error: 'no x-mqkit-original-topic header: pass --to <topic>' });
              failed = true;
              break;
            }
            if (opts.dryRun || client === undefined) {
              results.push({ id, to, status: 'would-replay' });
              continue;
            }
            await rate.take();
            if (!(await replayOne(client, batch, letter, to, results))) {
              failed = true;
              break;
            }
            done += 1;
            if (ctx.io.progress && !ctx.flags.json) ctx.io.stderr(`\r${progressBar(results.length, budget)}`);
          }
        } finally {
          await batch.release();
        }
        if (opts.dryRun || done === 0 || batch.messages.length < passSize(opts, Number.POSITIVE_INFINITY, ops.capabilities.read)) break;
      }
      if (ctx.io.progress && !ctx.flags.json && !opts.dryRun && results.length > 0) ctx.io.stderr('\n');
    } finally {
      await client?.close().catch(() => {});
    }
    const replayed = results.filter((r) => r.status === 'replayed').length;
    const failures = results.filter((r) => r.status === 'failed');
    output<DlqReplayDocument>(ctx, { adapter: ops.name, topic, dryRun: opts.dryRun, replayed, failed: failures.length, messages: results }, () => {
      const verb = opts.dryRun ? 'would replay' : 'replayed';
      const n = opts.dryRun ? results.filter((r) => r.status === 'would-replay').length : replayed;
      const lines = [`${verb} ${n} message(s) from ${topic} (${redactUrl(url)})`];
      if (opts.dryRun) lines.push(formatTable([{ header: 'ID' }, { header: 'TO' }], results.map((r) => [r.id, cell(r.to ?? undefined)])).trimEnd());
      for (const f of failures) lines.push(`failed ${f.id}: ${f.error}`);
      return `${lines.join('\n')}\n`;
    });
    return failures.length > 0 ? EXIT.FAILED : EXIT.OK;
  });
}

const BAR_WIDTH = 30;

/** `[#########.....................]  12/40 replayed`: redrawn in place on a terminal. */
export function progressBar(done: number, total: number): string {
  const filled = total === 0 ? BAR_WIDTH : Math.round((BAR_WIDTH * Math.min(done, total)) / total);
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${String(done).padStart(String(total).length)}/${total} replayed`;
}

/**
 * Messages read per replay pass: no more than are left to replay when nothing is filtered out,
 * and where a read holds them (RabbitMQ, SQS: 300 s) no more than the rate replays in two minutes,
 * so that none is handed to someone else before its turn comes.
 */
function passSize(opts: { scan: number; reason?: string | undefined; group?: string | undefined; rate?: string | undefined }, left: number, read: 'peek' | 'hold'): number {
  let n = opts.scan;
  if (opts.reason === undefined && opts.group === undefined) n = Math.min(n, left);
  if (read === 'hold' && opts.rate !== undefined) n = Math.min(n, Math.max(10, Math.floor(parseRate(opts.rate) * 120)));
  return Math.max(1, n);
}

/** Publish (confirmed) then remove; a failure leaves the message in the dead-letter topic. */
async function replayOne(client: Client, batch: MessageBatch, letter: DeadLetter, to: string, results: ReplayedMessage[]): Promise<boolean> {
  const e = letter.message.envelope;
  try {
    await client.publish(to, e.body, {
      id: e.id,
      ...(e.key === undefined ? {} : { key: e.key }),
      headers: applicationHeaders(e),
      codec: passThrough(e.headers['content-type'] ?? 'application/octet-stream'),
    });
  } catch (err) {
    results.push({ id: e.id, to, status: 'failed', error: err instanceof Error ? err.message : String(err) });
    return false;
  }
  try {
    await batch.remove([letter.message]);
  } catch (err) {
    // Republished but still in the dead-letter topic: a second replay publishes it again (same id).
    results.push({ id: e.id, to, status: 'failed', error: `republished, but not removed from the dead-letter topic: ${err instanceof Error ? err.message : String(err)}` });
    return false;
  }
  results.push({ id: e.id, to, status: 'replayed' });
  return true;
}

export async function dlqPurge(ctx: CommandContext, topicArg: string, raw: unknown): Promise<ExitCode> {
  const opts = parseOptions(purgeSchema, raw, 'dlq purge');
  const topic = deadLetterTopicOf(topicArg);
  if (!opts.yes) throw new MqError('CONFIG', `dlq purge deletes every message of ${topic} for good: add --yes`);
  return withOps(ctx, async (ops) => {
    await ops.depth(topic, opts.group);
    const purged = await ops.purge(topic, opts.group);
    output<DlqPurgeDocument>(ctx, { adapter: ops.name, topic, purged: purged ?? null }, () => `purged ${purged ?? 'all'} message(s) from ${topic}\n`);
    return EXIT.OK;
  });
}
