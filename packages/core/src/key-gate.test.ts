import { describe, expect, it } from 'vitest';
import { KeyGate } from './key-gate.ts';

describe('KeyGate', () => {
  it('holds a key while one of its messages is in a driver call, unless in-flight is allowed', () => {
    const gate = new KeyGate();
    gate.sent('k', 1);
    expect(gate.admits('k', 2)).toBe(false);
    expect(gate.admits('k', 2, true)).toBe(true);
    expect(gate.admits('other', 3)).toBe(true);
    gate.settled('k', 1, false);
    expect(gate.admits('k', 2)).toBe(true);
  });

  it('admits nothing of a key behind an earlier message waiting to be retried, even in the same batch', () => {
    const gate = new KeyGate();
    for (const seq of [33, 36, 39]) gate.sent('k', seq);
    // settled out of order, all to be retried
    gate.settled('k', 39, true);
    gate.settled('k', 33, true);
    gate.settled('k', 36, true);
    expect(gate.admits('k', 39, true)).toBe(false);
    expect(gate.admits('k', 33)).toBe(true);
    gate.sent('k', 33);
    // 33 is back in a driver call and 39's retry is due before 36's: 39 must still wait
    expect(gate.admits('k', 39, true)).toBe(false);
    expect(gate.admits('k', 36, true)).toBe(true);
    gate.sent('k', 36);
    expect(gate.admits('k', 39, true)).toBe(true);
    gate.sent('k', 39);
    expect(gate.admits('k', 40, true)).toBe(true);
  });

  it('lets the later messages of a key go once the message they waited behind is abandoned', () => {
    const gate = new KeyGate();
    gate.sent('k', 1);
    gate.settled('k', 1, true);
    expect(gate.admits('k', 2, true)).toBe(false);
    gate.abandon('k', 1);
    expect(gate.admits('k', 2)).toBe(true);
    gate.abandon('k', 7); // unknown: no effect
    expect(gate.admits('k', 3)).toBe(true);
  });
});
