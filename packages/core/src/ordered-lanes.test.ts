import { describe, expect, it } from 'vitest';
import { OrderedLanes } from './ordered-lanes.ts';

describe('OrderedLanes', () => {
  it('delivers only the head of a lane, the next one after an ack', () => {
    const lanes = new OrderedLanes<string>();
    expect(lanes.add('k', 'm1')).toBe(true);
    expect(lanes.add('k', 'm2')).toBe(false);
    expect(lanes.add('k', 'm3')).toBe(false);
    expect(lanes.add('other', 'x1')).toBe(true);
    expect(lanes.acked('k', 'm1')).toBe('m2');
    expect(lanes.acked('k', 'm2')).toBe('m3');
    expect(lanes.acked('k', 'm3')).toBeUndefined();
    expect(lanes.size).toBe(1);
  });

  it('after a nack hands back the later messages and starts the lane afresh', () => {
    const lanes = new OrderedLanes<string>();
    lanes.add('k', 'm1');
    lanes.add('k', 'm2');
    lanes.add('k', 'm3');
    expect(lanes.nacked('k', 'm1')).toEqual(['m2', 'm3']);
    expect(lanes.size).toBe(0);
    // The redelivered head starts a new lane.
    expect(lanes.add('k', 'm1')).toBe(true);
  });
});
