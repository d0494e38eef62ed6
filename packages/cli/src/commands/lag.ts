/** `mqkit lag [topic] [--group g]`: backlog per consumer group (and partition) from the adapter's operations. */
import { z } from 'zod';
import { parseOptions, type BacklogRow } from '@mqkit/core/driver';
import { brokerUrl, openOps } from '../backend.ts';
import { output, type CommandContext } from '../context.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { cell, formatTable } from '../table.ts';

const lagSchema = z.object({ group: z.string().min(1).optional() }).strict();

/** One row of `lag --json`: null where the broker does not tell. */
export interface LagRow {
  topic: string;
  group: string;
  partition: string | null;
  backlog: number;
  ready: number | null;
  inFlight: number | null;
  consumers: number | null;
}

/** `lag --json`. */
export interface LagDocument {
  adapter: string;
  groups: LagRow[];
}

const toRow = (r: BacklogRow): LagRow => ({
  topic: r.topic,
  group: r.group,
  partition: r.partition ?? null,
  backlog: r.backlog,
  ready: r.ready ?? null,
  inFlight: r.inFlight ?? null,
  consumers: r.consumers ?? null,
});

export async function lag(ctx: CommandContext, topic: string | undefined, raw: unknown): Promise<ExitCode> {
  const opts = parseOptions(lagSchema, raw, 'lag');
  const ops = await openOps(brokerUrl(ctx.flags.url, ctx.io.env));
  try {
    const rows = (await ops.backlog(topic, opts.group)).map(toRow);
    output<LagDocument>(ctx, { adapter: ops.name, groups: rows }, () => {
      if (rows.length === 0) return 'no consumer groups\n';
      // A column only when the broker tells it for some row (Kafka tells neither ready nor in flight).
      const has = (pick: (r: LagRow) => unknown): boolean => rows.some((r) => pick(r) !== null);
      const columns: Array<{ header: string; align?: 'right'; value: (r: LagRow) => string; shown: boolean }> = [
        { header: 'TOPIC', value: (r) => r.topic, shown: true },
        { header: 'GROUP', value: (r) => r.group, shown: true },
        { header: 'PARTITION', align: 'right', value: (r) => cell(r.partition ?? undefined), shown: has((r) => r.partition) },
        { header: 'BACKLOG', align: 'right', value: (r) => String(r.backlog), shown: true },
        { header: 'READY', align: 'right', value: (r) => cell(r.ready ?? undefined), shown: has((r) => r.ready) },
        { header: 'IN FLIGHT', align: 'right', value: (r) => cell(r.inFlight ?? undefined), shown: has((r) => r.inFlight) },
        { header: 'CONSUMERS', align: 'right', value: (r) => cell(r.consumers ?? undefined), shown: has((r) => r.consumers) },
      ];
      const shown = columns.filter((c) => c.shown);
      return formatTable(shown, rows.map((r) => shown.map((c) => c.value(r))));
    });
    return EXIT.OK;
  } finally {
    await ops.close().catch(() => {});
  }
}
