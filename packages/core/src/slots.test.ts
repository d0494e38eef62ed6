import { describe, expect, it } from 'vitest';
import { KeyIndex, Slots } from './slots.ts';

describe('Slots', () => {
  it('adds, deletes (twice is harmless) and reuses freed slots', () => {
    const slots = new Slots<{ name: string; slot: number }>();
    const a = { name: 'a', slot: -1 };
    const b = { name: 'b', slot: -1 };
    const c = { name: 'c', slot: -1 };
    slots.add(a);
    slots.add(b);
    slots.delete(a);
    slots.delete(a);
    expect(a.slot).toBe(-1);
    expect(slots.size).toBe(1);
    slots.add(c);
    expect(c.slot).toBe(0); // a's slot again
    expect(slots.list().map((x) => x.name)).toEqual(['c', 'b']);
  });

  it('ignores an item it does not hold', () => {
    const slots = new Slots<{ slot: number }>();
    const held = { slot: -1 };
    slots.add(held);
    slots.delete({ slot: 0 }); // another item claiming slot 0
    expect(slots.size).toBe(1);
    expect(slots.list()).toEqual([held]);
  });
});

describe('KeyIndex', () => {
  it('keeps its entries across the periodic move to a fresh Map', () => {
    const index = new KeyIndex<number>();
    for (let i = 0; i < 5_000; i += 1) {
      index.set(`k${i}`, i);
      if (i >= 10) index.delete(`k${i - 10}`); // ten live at a time, as in-flight messages
    }
    expect(index.values().sort((x, y) => x - y)).toEqual([4990, 4991, 4992, 4993, 4994, 4995, 4996, 4997, 4998, 4999]);
    expect(index.get('k4999')).toBe(4999);
    expect(index.has('k0')).toBe(false);
    expect(index.get('k0')).toBeUndefined();
  });
});
