import { describe, expect, it } from 'vitest';
import { OffsetTracker } from './offset-tracker.ts';

describe('OffsetTracker', () => {
  it('commits only the contiguous settled prefix', () => {
    const t = new OffsetTracker();
    for (const o of [10n, 11n, 12n, 13n]) expect(t.add(o)).toBe(true);
    expect(t.complete(12n)).toBeUndefined(); // 10 and 11 unfinished
    expect(t.complete(11n)).toBeUndefined();
    expect(t.complete(10n)).toBe(13n); // 10, 11, 12 done: next to read is 13
    expect(t.pending).toBe(1);
    expect(t.complete(13n)).toBe(14n);
    expect(t.pending).toBe(0);
  });

  it('handles offset gaps (transaction markers, compaction)', () => {
    const t = new OffsetTracker();
    t.add(5n);
    t.add(9n);
    expect(t.complete(9n)).toBeUndefined();
    expect(t.complete(5n)).toBe(10n);
  });

  it('refuses offsets it already holds (a re-fetch)', () => {
    const t = new OffsetTracker();
    t.add(1n);
    t.add(2n);
    expect(t.add(2n)).toBe(false);
    expect(t.add(1n)).toBe(false);
    expect(t.add(3n)).toBe(true);
  });

  it('stays correct across compaction of its queue', () => {
    const t = new OffsetTracker();
    for (let o = 0n; o < 5000n; o += 1n) t.add(o);
    let last: bigint | undefined;
    for (let o = 0n; o < 5000n; o += 1n) last = t.complete(o) ?? last;
    expect(last).toBe(5000n);
    expect(t.pending).toBe(0);
  });

  it('tells the position a transaction may commit for one offset without settling it', () => {
    const t = new OffsetTracker();
    for (const o of [0n, 1n, 2n]) t.add(o);
    expect(t.positionIfCompleted(1n)).toBeUndefined(); // 0 unfinished
    expect(t.positionIfCompleted(0n)).toBe(1n);
    t.complete(1n);
    expect(t.positionIfCompleted(0n)).toBe(2n);
    expect(t.pending).toBe(3);
  });
});
