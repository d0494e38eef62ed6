/**
 * `mqkit topology plan|apply|verify`: the portable topology description (`client.declare()`'s
 * {@link TopicDeclaration}) from a JSON file or flags, checked or created on the broker of the URL.
 * - plan: what apply would create, and what exists but does not fit; changes nothing; exit 0.
 * - apply: declares each topic (creates what is missing), then checks again; exit 1 if anything
 *   is still missing or does not fit.
 * - verify: exit 0 when everything exists and fits, 1 when not (a deploy gate or probe).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { MqError, type Client, type MissingTopology, type TopicDeclaration } from '@mqkit/core';
import { parseOptions, withDeadline } from '@mqkit/core/driver';
import { brokerUrl, openClient } from '../backend.ts';
import { output, type CommandContext } from '../context.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { formatTable } from '../table.ts';

export type TopologyAction = 'plan' | 'apply' | 'verify';

const flagsSchema = z
  .object({
    topic: z.string().min(1).optional(),
    group: z.array(z.string().min(1)).optional(),
    ordered: z.boolean().optional(),
    delayed: z.boolean().optional(),
    transactional: z.boolean().optional(),
    partitions: z.number().int().min(1).optional(),
    deadLetter: z.union([z.boolean(), z.string().min(1)]).optional(),
  })
  .strict();

/** One declared topic in `topology --json`: what is missing before, what was created, what is still missing. */
export interface TopologyTopicReport {
  topic: string;
  /** plan/verify: what is missing or does not fit now; apply: what is still missing after declaring. */
  missing: MissingTopology[];
  /** apply only: what was missing before the declare (so, created). */
  created?: MissingTopology[];
}

/** `topology plan|apply|verify --json`. */
export interface TopologyDocument {
  ok: boolean;
  action: TopologyAction;
  adapter: string;
  topics: TopologyTopicReport[];
}

/** The declarations of a file: one declaration object or an array of them. */
export function readDeclarations(path: string): TopicDeclaration[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new MqError('CONFIG', `topology file ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new MqError('CONFIG', `topology file ${path} is not JSON: ${(err as Error).message}`);
  }
  const list = Array.isArray(parsed) ? parsed : [parsed];
  if (list.length === 0 || list.some((d) => typeof d !== 'object' || d === null)) {
    throw new MqError('CONFIG', `topology file ${path}: expected a declaration object ({ "topic": … }) or a non-empty array of them`);
  }
  // Checked field by field by client.plan()/declare() (one schema, core's), naming the field.
  return list as TopicDeclaration[];
}

function declarationsOf(file: string | undefined, raw: unknown): TopicDeclaration[] {
  const flags = parseOptions(flagsSchema, raw, 'topology');
  if (file !== undefined) {
    // --no-dead-letter's default (true) is no flag given.
    const given = Object.entries(flags).filter(([name, value]) => value !== undefined && !(name === 'deadLetter' && value === true));
    if (given.length > 0) throw new MqError('CONFIG', `topology: give a file or flags (--topic, --group, …), not both (got ${given.map(([name]) => name).join(', ')} with ${file})`);
    return readDeclarations(file);
  }
  if (flags.topic === undefined) throw new MqError('CONFIG', 'topology: give a JSON file of declarations or --topic <topic>');
  const { group, ...rest } = flags;
  return [{ ...rest, topic: flags.topic, ...(group ? { groups: group } : {}) }];
}

const describe = (m: MissingTopology): string => (m.kind === 'group' && m.topic ? `${m.name} (of ${m.topic})` : m.name);

export async function topology(ctx: CommandContext, action: TopologyAction, file: string | undefined, raw: unknown): Promise<ExitCode> {
  const declarations = declarationsOf(file, raw);
  const url = brokerUrl(ctx.flags.url, ctx.io.env);
  // 'none': connecting declares and checks nothing of its own; only the command's calls act.
  const client = await openClient(url, { topology: 'none' });
  try {
    const topics = await withDeadline(run(client, action, declarations), ctx.flags.timeout, `topology ${action}`);
    const ok = action === 'plan' || topics.every((t) => t.missing.length === 0);
    output<TopologyDocument>(ctx, { ok, action, adapter: client.adapter, topics }, () => human(action, topics));
    return ok ? EXIT.OK : EXIT.FAILED;
  } finally {
    await client.close().catch(() => {});
  }
}

async function run(client: Client, action: TopologyAction, declarations: readonly TopicDeclaration[]): Promise<TopologyTopicReport[]> {
  const reports: TopologyTopicReport[] = [];
  for (const declaration of declarations) {
    const before = [...(await client.plan(declaration))];
    if (action !== 'apply') {
      reports.push({ topic: declaration.topic, missing: before });
      continue;
    }
    if (before.length > 0) await client.declare(declaration);
    // Checked again: a declare the broker took but did not do (or a misfit it cannot fix) shows here.
    const after = before.length > 0 ? [...(await client.plan(declaration))] : [];
    reports.push({ topic: declaration.topic, missing: after, created: before.filter((b) => !after.some((a) => a.kind === b.kind && a.name === b.name)) });
  }
  return reports;
}

function human(action: TopologyAction, topics: readonly TopologyTopicReport[]): string {
  const rows: string[][] = [];
  for (const t of topics) {
    for (const c of t.created ?? []) rows.push([t.topic, c.kind, describe(c), 'created']);
    for (const m of t.missing) rows.push([t.topic, m.kind, describe(m), m.problem ?? (action === 'apply' ? 'still missing' : 'missing')]);
  }
  const names = topics.map((t) => t.topic).join(', ');
  if (rows.length === 0) return action === 'apply' ? `nothing to create: ${names} already declared\n` : `everything exists: ${names}\n`;
  return formatTable([{ header: 'TOPIC' }, { header: 'KIND' }, { header: 'NAME' }, { header: 'STATUS' }], rows);
}
