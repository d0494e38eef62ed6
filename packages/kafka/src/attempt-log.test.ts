import { describe, expect, it } from 'vitest';
import { decodeAttemptLog, encodeAttemptLog, MAX_METADATA_CHARS } from './attempt-log.ts';

const e = (offset: number, attempt: number, done = false, handed = true, taken = true) => ({ offset: String(offset), attempt, done, handed, taken });

describe('attempt log (offset-commit metadata)', () => {
  it('round-trips runs of taken, retried and acked offsets relative to the position', () => {
    const text = encodeAttemptLog(100, 110, [e(100, 3), e(101, 1), e(102, 1), e(103, 1, true), e(105, 2), e(111, 1)], 1);
    const log = decodeAttemptLog(text, 100)!;
    expect(log.prior(99)).toBe(0);
    expect(log.prior(100)).toBe(3);
    expect(log.prior(102)).toBe(1);
    expect(log.prior(103)).toBe('done');
    expect(log.prior(104)).toBe('done'); // a gap takes the run's value; it is never fetched
    expect(log.prior(105)).toBe(2);
    expect(log.prior(110)).toBe(2);
    expect(log.prior(111)).toBe(0); // never taken
  });

  it('counts a taken record not yet handed over while running, and only handed ones on close (exact)', () => {
    const entries = [e(0, 2, false, true), e(1, 1, false, false), e(2, 3, false, false)];
    const running = decodeAttemptLog(encodeAttemptLog(0, 2, entries, 1), 0)!;
    expect([0, 1, 2].map((o) => running.prior(o))).toEqual([2, 1, 3]);
    const closed = decodeAttemptLog(encodeAttemptLog(0, 2, entries, 1, true), 0)!;
    expect([0, 1, 2].map((o) => closed.prior(o))).toEqual([2, 0, 2]);
    const heldBack = decodeAttemptLog(encodeAttemptLog(0, 1, [e(0, 1), e(1, 3, false, false, false)], 1), 0)!;
    expect([0, 1].map((o) => heldBack.prior(o))).toEqual([1, 2]);
  });

  it('stays under the broker limit, rounding the rest of the window up (never fewer attempts)', () => {
    const entries = Array.from({ length: 5_000 }, (_, i) => e(i, 1, i % 2 === 0));
    const text = encodeAttemptLog(0, 4_999, entries, 7);
    expect(text.length).toBeLessThan(MAX_METADATA_CHARS + 20);
    const log = decodeAttemptLog(text, 0)!;
    expect(log.prior(1)).toBe(1);
    expect(log.prior(0)).toBe('done');
    expect(log.prior(4_999)).toBe(7);
  });

  it('reads anything else (another tool, garbage, a forged value) as nothing recorded', () => {
    for (const bad of [null, '', 'hello', 'mq1;Z;', 'mq1;5;0:1,0:2', 'mq1;5;9:1', 'mq1;-1;', 'mq1;5;0:1;x', 'mq1;5;0:-']) {
      expect(decodeAttemptLog(bad, 10)).toBeUndefined();
    }
    expect(decodeAttemptLog('mq1;5;', 10)!.prior(12)).toBe(1);
    expect(encodeAttemptLog(10, 9, [], 1)).toBe('mq1');
    expect(decodeAttemptLog('mq1', 10)).toBeUndefined();
  });
});
