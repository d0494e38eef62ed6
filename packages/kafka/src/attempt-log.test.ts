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
    const closed = decodeAttemptLog(encodeAttemptLog(0, 2, entries, 1, 'exact'), 0)!;
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
    expect(encodeAttemptLog(10, 9, [], 1)).toBe('mq2;0;0;');
    for (const bad of ['mq1', 'mq2;0;0;0:1', 'mq2;3;-;', 'mq2;3;c', 'mq2;3;c;4:1']) expect(decodeAttemptLog(bad, 10)).toBeUndefined();
  });

  it('running log: every unacked record up to end + lag is a suspect, counted at least once taken; past it nothing is known', () => {
    // position 10, window [10, 12], lag 3: m10 handed twice, m11 acked, m12 never handed yet.
    const text = encodeAttemptLog(10, 12, [e(10, 2), e(11, 1, true), e(12, 1, false, false, false)], 2, { lag: 3 });
    expect(text).toBe('mq2;3;3;0:2,1:_,2:0');
    const log = decodeAttemptLog(text, 10)!;
    expect(log.clean).toBe(false);
    expect(log.limit).toBe(15);
    expect(log.recover(10)).toEqual({ attempt: 3, suspect: true });
    expect(log.recover(11)).toBe('done');
    expect(log.recover(12)).toEqual({ attempt: 2, suspect: true }); // maybe handed after the commit
    expect(log.recover(15)).toEqual({ attempt: 2, suspect: true }); // within the lag
    expect(log.recover(16)).toBeUndefined();
  });

  it('clean log (close): exact; only records with deliveries are suspects', () => {
    const log = decodeAttemptLog(encodeAttemptLog(0, 2, [e(0, 2), e(1, 1, false, false), e(2, 1, true)], 2, 'exact'), 0)!;
    expect(log.clean).toBe(true);
    expect(log.recover(0)).toEqual({ attempt: 3, suspect: true });
    expect(log.recover(1)).toBeUndefined();
    expect(log.recover(2)).toBe('done');
    expect(log.recover(3)).toBeUndefined();
    // The older format reads as clean.
    expect(decodeAttemptLog('mq1;2;0:1', 0)!.recover(2)).toEqual({ attempt: 2, suspect: true });
  });

  it("a new owner's log carries the previous one's suspects it has not fetched yet", () => {
    const prev = decodeAttemptLog('mq2;3;2;0:3,1:_,2:0', 0)!; // window [0, 2], limit 4
    const text = encodeAttemptLog(0, prev.limit, [e(0, 4, false, false, false)], 3, { lag: 2 }, prev);
    const log = decodeAttemptLog(text, 0)!;
    expect([0, 1, 2, 3, 4].map((o) => log.recover(o))).toEqual([0, 1, 2, 3, 4].map((o) => prev.recover(o)));
    // Into an exact log too.
    const closed = decodeAttemptLog(encodeAttemptLog(0, prev.limit, [e(0, 4, false, false, false)], 3, 'exact', prev), 0)!;
    expect([0, 1, 2, 3, 4].map((o) => closed.recover(o))).toEqual([0, 1, 2, 3, 4].map((o) => prev.recover(o)));
  });
});
