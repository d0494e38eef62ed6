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
    output(ctx, { adapter: ops.name, groups: rows }, () => {
      if (rows.length === 0) return 'no consumer groups\n';
      const partitioned = rows.some((r) => r.partition !== null);
      return formatTable(
        [
          { header: 'TOPIC' },
          { header: 'GROUP' },
          ...(partitioned ? [{ header: 'PARTITION', align: 'right' as const }] : []),
          { header: 'BACKLOG', align: 'right' },
          { header: 'READY', align: 'right' },
          { header: 'IN FLIGHT', align: 'right' },
          { header: 'CONSUMERS', align: 'right' },
        ],
        rows.map((r) => [
          r.topic,
          r.group,
          ...(partitioned ? [cell(r.partition ?? undefined)] : []),
          String(r.backlog),
          cell(r.ready ?? undefined),
          cell(r.inFlight ?? undefined),
          cell(r.consumers ?? undefined),
        ]),
      );
    });
    return EXIT.OK;
  } finally {
    await ops.close().catch(() => {});
  }
}
