import { describe, expect, it } from 'vitest';
import { compareOffsets, nextOffset, OffsetTracker } from './offset-tracker.ts';

interface E {
  offset: string;
  done: boolean;
}
const entry = (offset: number | string): E => ({ offset: String(offset), done: false });

/** Marks `e` settled and returns the new commit position (last contiguous + 1), like the subscription. */
function settle(t: OffsetTracker<E>, e: E): string | undefined {
  e.done = true;
  const last = t.advance();
  return last === undefined ? undefined : nextOffset(last);
}

describe('OffsetTracker', () => {
  it('commits only the contiguous settled prefix', () => {
    const t = new OffsetTracker<E>();
    const [e10, e11, e12, e13] = [10, 11, 12, 13].map(entry) as [E, E, E, E];
    for (const e of [e10, e11, e12, e13]) expect(t.add(e)).toBe(true);
    expect(settle(t, e12)).toBeUndefined(); // 10 and 11 unfinished
    expect(settle(t, e11)).toBeUndefined();
    expect(settle(t, e10)).toBe('13'); // 10, 11, 12 done: next to read is 13
    expect(t.pending).toBe(1);
    expect(settle(t, e13)).toBe('14');
    expect(t.pending).toBe(0);
  });

  it('handles offset gaps (transaction markers, compaction)', () => {
    const t = new OffsetTracker<E>();
    const e5 = entry(5);
    const e9 = entry(9);
    t.add(e5);
    t.add(e9);
    expect(settle(t, e9)).toBeUndefined();
    expect(settle(t, e5)).toBe('10');
  });

  it('refuses offsets it already holds (a re-fetch)', () => {
    const t = new OffsetTracker<E>();
    t.add(entry(1));
    t.add(entry(2));
    expect(t.add(entry(2))).toBe(false);
    expect(t.add(entry(1))).toBe(false);
    expect(t.add(entry(3))).toBe(true);
    expect(t.add(entry(10))).toBe(true); // numeric, not lexicographic order
    expect(t.add(entry(9))).toBe(false);
  });

  it('stays correct across compaction of its queue', () => {
    const t = new OffsetTracker<E>();
    const all = Array.from({ length: 5000 }, (_, o) => entry(o));
    for (const e of all) t.add(e);
    let last: string | undefined;
    for (const e of all) last = settle(t, e) ?? last;
    expect(last).toBe('5000');
    expect(t.pending).toBe(0);
  });

  it('advances across many settled entries at once and lists the unsettled ones', () => {
    const t = new OffsetTracker<E>();
    const all = Array.from({ length: 3000 }, (_, o) => entry(o));
    for (const e of all) t.add(e);
    for (const e of all.slice(1, 2500)) e.done = true;
    expect(t.advance()).toBeUndefined(); // 0 still open
    expect(settle(t, all[0]!)).toBe('2500');
    expect([...t.unsettled()].map((e) => e.offset)).toEqual(all.slice(2500).map((e) => e.offset));
  });

  it('tells the position a transaction may commit for one offset without settling it', () => {
    const t = new OffsetTracker<E>();
    const es = [0, 1, 2].map(entry) as [E, E, E];
    for (const e of es) t.add(e);
    expect(t.positionIfCompleted('1')).toBeUndefined(); // 0 unfinished
    expect(t.positionIfCompleted('0')).toBe('1');
    settle(t, es[1]);
    expect(t.positionIfCompleted('0')).toBe('2');
    expect(t.pending).toBe(3);
  });

  it('compares and increments 64-bit offsets exactly', () => {
    expect(compareOffsets('9', '10')).toBeLessThan(0);
    expect(compareOffsets('10', '9')).toBeGreaterThan(0);
    expect(compareOffsets('12', '12')).toBe(0);
    expect(compareOffsets('9007199254740993', '9007199254740992')).toBeGreaterThan(0);
    expect(nextOffset('9007199254740992')).toBe('9007199254740993');
    expect(nextOffset('9223372036854775806')).toBe('9223372036854775807');
  });
});
