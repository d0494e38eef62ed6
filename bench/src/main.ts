/**
 * `pnpm bench [kafka|rabbitmq|rocketmq|sqs|redis ...] [--n N] [--size BYTES] [--reps R] [--only TEXT] [--list]`
 *
 * For each broker: every registered scenario (src/registry.ts), repeated `reps` times with the
 * scenarios interleaved inside each repetition (so machine noise hits all rows alike); median and
 * min–max of msg/s per row; ratios against each row's named baseline; a table on stdout and
 * `bench/results/<timestamp>-<broker>.json`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, checkReachable, resolveEndpoint } from './endpoints.ts';
import { scenarios, suites } from './registry.ts';
import { type RowResult, finish, newRow, table } from './stats.ts';
import { BENCH_BROKERS, type BenchBroker, type BenchContext, type BenchEndpoints, type BrokerSuite } from './types.ts';

const USAGE = `usage: pnpm bench [${BENCH_BROKERS.join('|')} ...] [--n N] [--size BYTES] [--reps R] [--only TEXT] [--list]
  --n      messages per repetition (default per broker: kafka/rabbitmq/rocketmq 20000, sqs 5000,
           redis 50000; the opt-in rss rows 100000, sqs 20000)
  --size   payload bytes (default 1024)
  --reps   repetitions (default 3)
  --only   run only scenarios whose name contains TEXT (repeatable); opt-in rows (the backlog-drain
           RSS rows: --only rss) run only when an --only selects them
  --list   list the scenarios (opt-in ones marked) and exit`;

export async function main(argv: string[]): Promise<number> {
  // The outbox benchmark measures a relay, not a client: it has its own runner and flags.
  if (argv[0] === 'outbox') return (await import('./outbox/main.ts')).main(argv.slice(1));
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        n: { type: 'string' },
        size: { type: 'string' },
        reps: { type: 'string', default: '3' },
        only: { type: 'string', multiple: true },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    console.error(`bench: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.values.help) {
    console.log(USAGE);
    return 0;
  }
  const bad = args.positionals.filter((p) => !(BENCH_BROKERS as readonly string[]).includes(p));
  if (bad.length) {
    console.error(`bench: unknown broker(s) ${bad.join(', ')}\n${USAGE}`);
    return 2;
  }
  const brokers = (args.positionals.length ? [...new Set(args.positionals)] : [...BENCH_BROKERS]) as BenchBroker[];
  const num = (s: string | undefined, what: string) => {
    if (s === undefined) return undefined;
    const v = Number(s);
    if (!Number.isInteger(v) || v <= 0) throw new Error(`--${what} must be a positive integer`);
    return v;
  };
  const reps = num(args.values.reps, 'reps')!;
  const nOpt = num(args.values.n, 'n');
  const sizeOpt = num(args.values.size, 'size');
  const only = args.values.only ?? [];
  const selected = (b: BenchBroker) =>
    scenarios.filter((s) => s.broker === b && (only.length === 0 ? !s.optIn : only.some((o) => s.name.includes(o))));

  if (args.values.list) {
    const listed = (b: BenchBroker) => (only.length ? selected(b) : scenarios.filter((s) => s.broker === b));
    for (const b of brokers) {
      for (const s of listed(b)) {
        const tags = [s.baseline ? `baseline: ${s.baseline}` : '', s.n ? `n ${s.n}` : '', s.optIn ? 'opt-in: --only' : ''].filter(Boolean);
        console.log(`${b.padEnd(9)} ${s.kind.padEnd(8)} ${s.name.padEnd(40)} ${s.description}${tags.length ? ` [${tags.join('; ')}]` : ''}`);
      }
    }
    return 0;
  }

  // endpoints first, all of them: fail before spending minutes on the first broker
  const eps = new Map<BenchBroker, { endpoint: BenchEndpoints[BenchBroker]; source: string }>();
  try {
    for (const b of brokers) {
      if (selected(b).length === 0) continue; // e.g. `--only rss` on a broker without that row
      const r = resolveEndpoint(b);
      await checkReachable(b, r.endpoint, r.source);
      eps.set(b, r);
    }
  } catch (e) {
    console.error((e as Error).message);
    return 1;
  }

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const runId = Date.now().toString(36);
  let seq = 0;
  const resultsDir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const allRows: RowResult[] = [];
  let failed = false;

  for (const b of brokers) {
    const suite = suites[b] as BrokerSuite;
    const n = nOpt ?? suite.defaults.n;
    const size = sizeOpt ?? suite.defaults.size;
    const list = selected(b);
    if (!list.length) continue;
    const nOf = (s: (typeof list)[number]) => nOpt ?? s.n ?? n;
    const own = list.filter((s) => nOf(s) !== n).map((s) => `${s.name}: ${nOf(s)}`);
    const { endpoint, source } = eps.get(b)!;
    console.log(`\n== ${b}: ${list.length} scenarios × ${reps} reps, ${n} × ${size} B${own.length ? ` (${own.join(', ')})` : ''} (${source})`);
    const base = {
      broker: b,
      endpoint,
      n,
      size,
      payload: randomBytes(size),
      name: (prefix: string) => `${prefix}-${runId}-${(seq++).toString(36)}`,
      shared: new Map<string, unknown>(),
      log: (m: string) => console.log(`   ${m}`),
    };
    const rows = list.map(newRow);
    const t0 = Date.now();
    try {
      await (suite.before)?.({ ...base, reps });
    } catch (e) {
      for (const r of rows) r.error = `broker setup: ${(e as Error).message}`;
      console.error(`   ${b} setup failed: ${(e as Error).message}`);
    }
    for (let rep = 0; rep < reps && !rows.every((r) => r.error); rep++) {
      for (const [i, s] of list.entries()) {
        const row = rows[i]!;
        if (row.error) continue;
        const ctx: BenchContext = { ...base, n: nOf(s), rep };
        let state: unknown;
        try {
          state = s.setup ? await s.setup(ctx) : undefined;
          const m = await s.run(ctx, state);
          if (!(m.count > 0 && m.ms > 0)) throw new Error(`bad measurement ${JSON.stringify(m)}`);
          const rate = (m.count / m.ms) * 1000;
          row.runs.push({ ...m, rate, rep });
          const extra = Object.entries(m.metrics ?? {}).map(([k, v]) => `, ${k} ${v.toFixed(1)}`).join('');
          console.log(`   rep ${rep + 1}/${reps}  ${s.name.padEnd(40)} ${Math.round(rate).toLocaleString('en-US').padStart(8)} msg/s  (${m.count} in ${(m.ms / 1000).toFixed(2)} s${extra})`);
        } catch (e) {
          row.error = (e as Error).message;
          console.error(`   rep ${rep + 1}/${reps}  ${s.name} FAILED: ${(e as Error).stack ?? String(e)}`);
        } finally {
          if (s.teardown && state !== undefined) await s.teardown(ctx, state).catch((e: Error) => console.error(`   teardown ${s.name}: ${e.message}`));
        }
      }
    }
    await (suite.after)?.(base).catch((e: Error) => console.error(`   ${b} after: ${e.message}`));
    finish(rows);
    if (rows.some((r) => r.error)) failed = true;
    allRows.push(...rows);
    const file = join(resultsDir, `${stamp}-${b}.json`);
    writeFileSync(
      file,
      `${JSON.stringify(
        {
          broker: b,
          startedAt: new Date(t0).toISOString(),
          seconds: (Date.now() - t0) / 1000,
          n,
          size,
          reps,
          endpoint,
          node: process.version,
          rows: rows.map((r) => ({
            ...r,
            runs: r.runs.map((x) => ({ rep: x.rep, count: x.count, ms: Math.round(x.ms), rate: Math.round(x.rate), ...(x.metrics ? { metrics: x.metrics } : {}) })),
          })),
        },
        null,
        2,
      )}\n`,
    );
    console.log(`\n${table(rows)}\n   (${((Date.now() - t0) / 1000).toFixed(0)} s; ${file.replace(`${REPO_ROOT}/`, '')})`);
  }

  if (brokers.length > 1) console.log(`\n== summary (median of ${reps}; ratio = median of per-repetition ratios to the baseline, same run)\n${table(allRows)}`);
  return failed ? 1 : 0;
}
