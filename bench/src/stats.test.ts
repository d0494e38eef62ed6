import { describe, expect, it } from 'vitest';
import { finish, metricSummary, pairedRatios, type RowResult, table } from './stats.ts';

function row(name: string, rates: Array<number | undefined>, baseline?: string): RowResult {
  return {
    broker: 'kafka',
    name,
    kind: 'publish',
    client: 'x',
    description: '',
    ...(baseline ? { baseline } : {}),
    runs: rates.flatMap((rate, rep) => (rate === undefined ? [] : [{ rep, rate, count: 1, ms: 1 }])),
  };
}

describe('bench ratios', () => {
  it('pairs each repetition with the baseline of the same repetition', () => {
    // The machine is twice as fast in rep 2: a ratio of medians sees 1.5, each pair sees ~0.9.
    const base = row('raw', [100, 200, 100]);
    const mine = row('mqkit', [90, 180, 200], 'raw');
    expect(pairedRatios(mine, base)).toEqual([0.9, 0.9, 2]);
    finish([base, mine]);
    expect(mine.ratio).toBeCloseTo(0.9);
    expect(mine.ratioMin).toBeCloseTo(0.9);
    expect(mine.ratioMax).toBeCloseTo(2);
    expect(mine.ratioOfMedians).toBeCloseTo(180 / 100);
  });

  it('skips repetitions that only one of the two rows completed', () => {
    const base = row('raw', [100, undefined, 50]);
    const mine = row('mqkit', [undefined, 70, 60], 'raw');
    expect(pairedRatios(mine, base)).toEqual([1.2]);
  });

  it('gives no ratio when nothing pairs', () => {
    const base = row('raw', [100]);
    const mine = row('mqkit', [undefined, 70], 'raw');
    finish([base, mine]);
    expect(mine.ratio).toBeUndefined();
    expect(mine.ratioOfMedians).toBeCloseTo(0.7);
  });

  it('summarises extra metrics as median (min–max) and adds the column only when a row has them', () => {
    const r = row('rss', [10, 20, 30]);
    r.runs.forEach((x, i) => (x.metrics = { rssGrowthMb: [12, 30.25, 8][i]! }));
    expect(metricSummary(r)).toBe('rssGrowthMb 12.0 (8.0–30.3)');
    finish([r]);
    expect(table([r])).toContain('rssGrowthMb 12.0 (8.0–30.3)');
    expect(table([row('plain', [1])])).not.toContain('other');
  });
});
