/** Row statistics and the printed table. */
import type { BenchBroker, Measurement, Scenario } from './types.ts';

export interface RowResult {
  broker: BenchBroker;
  name: string;
  kind: 'publish' | 'consume';
  client: string;
  description: string;
  baseline?: string;
  /** One per completed repetition, `rep` counting from 0. */
  runs: Array<Measurement & { rate: number; rep: number }>;
  error?: string;
  median?: number;
  min?: number;
  max?: number;
  /**
   * Median of the per-repetition ratios (this row's rate / its baseline's rate in the same
   * repetition). Rows run interleaved, so each pair shares the machine's state of that moment;
   * pairing takes out the drift between repetitions that a ratio of medians keeps.
   */
  ratio?: number;
  /** Lowest and highest per-repetition ratio. */
  ratioMin?: number;
  ratioMax?: number;
  /** median / baseline median (the unpaired ratio, for reference). */
  ratioOfMedians?: number;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function newRow(s: Scenario): RowResult {
  return {
    broker: s.broker,
    name: s.name,
    kind: s.kind,
    client: s.client,
    description: s.description,
    ...(s.baseline ? { baseline: s.baseline } : {}),
    runs: [],
  };
}

export function finish(rows: RowResult[]): void {
  for (const r of rows) {
    const rates = r.runs.map((x) => x.rate);
    if (!rates.length) continue;
    r.median = median(rates);
    r.min = Math.min(...rates);
    r.max = Math.max(...rates);
  }
  for (const r of rows) {
    if (!r.baseline || r.median === undefined) continue;
    const b = rows.find((x) => x.broker === r.broker && x.name === r.baseline);
    if (!b?.median) continue;
    r.ratioOfMedians = r.median / b.median;
    const paired = pairedRatios(r, b);
    if (paired.length === 0) continue;
    r.ratio = median(paired);
    r.ratioMin = Math.min(...paired);
    r.ratioMax = Math.max(...paired);
  }
}

/** This row's rate over its baseline's, for every repetition both completed. */
export function pairedRatios(row: Pick<RowResult, 'runs'>, baseline: Pick<RowResult, 'runs'>): number[] {
  const base = new Map(baseline.runs.map((x) => [x.rep, x.rate]));
  const out: number[] = [];
  for (const x of row.runs) {
    const b = base.get(x.rep);
    if (b !== undefined && b > 0) out.push(x.rate / b);
  }
  return out;
}

const fmt = (x: number | undefined) => (x === undefined ? '—' : Math.round(x).toLocaleString('en-US'));

/** A row's extra figures (Measurement.metrics) as `name median (min–max)`, over its repetitions. */
export function metricSummary(r: Pick<RowResult, 'runs'>): string {
  const names = [...new Set(r.runs.flatMap((x) => Object.keys(x.metrics ?? {})))];
  return names
    .map((k) => {
      const vs = r.runs.map((x) => x.metrics?.[k]).filter((v): v is number => v !== undefined);
      const one = (v: number) => v.toFixed(1);
      return vs.length === 1 ? `${k} ${one(vs[0]!)}` : `${k} ${one(median(vs))} (${one(Math.min(...vs))}–${one(Math.max(...vs))})`;
    })
    .join(', ');
}

export function table(rows: RowResult[]): string {
  const withMetrics = rows.some((r) => r.runs.some((x) => x.metrics));
  const head = ['broker', 'scenario', 'kind', 'median msg/s', 'min–max msg/s', 'ratio (paired median, min–max)', ...(withMetrics ? ['other (median, min–max)'] : [])];
  const body = rows.map((r) => [
    r.broker,
    r.name,
    r.kind,
    r.error ? 'FAILED' : fmt(r.median),
    r.error ? r.error.slice(0, 60) : `${fmt(r.min)}–${fmt(r.max)}`,
    r.ratio !== undefined ? `${r.ratio.toFixed(2)}× (${r.ratioMin!.toFixed(2)}–${r.ratioMax!.toFixed(2)}) vs ${r.baseline}` : '',
    ...(withMetrics ? [metricSummary(r)] : []),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 3 ? c.padStart(w[i]!) : c.padEnd(w[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(line)].join('\n');
}
