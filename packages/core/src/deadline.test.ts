import { afterEach, describe, expect, it, vi } from 'vitest';
import { settledWithin, withDeadline } from './deadline.ts';
import { MqError } from './errors.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('withDeadline', () => {
  it('passes a result or a failure through and clears its timer', async () => {
    vi.useFakeTimers();
    await expect(withDeadline(Promise.resolve(3), 100, 'x')).resolves.toBe(3);
    await expect(withDeadline(Promise.reject(new Error('boom')), 100, 'x')).rejects.toThrow('boom');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('turns a hang into TIMEOUT naming what hung, and swallows a late failure', async () => {
    vi.useFakeTimers();
    let fail!: (e: unknown) => void;
    const hung = new Promise((_, reject) => (fail = reject));
    const waiting = withDeadline(hung, 20, 'rocketmq: startup').catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(20);
    const err = await waiting;
    expect(MqError.is(err, 'TIMEOUT')).toBe(true);
    expect((err as Error).message).toBe('rocketmq: startup did not finish within 20 ms');
    fail(new Error('late')); // no unhandled rejection (vitest would fail the run)
    await Promise.resolve();
  });
});

describe('settledWithin', () => {
  it('is true when the promise fulfils in time, false when the time runs out, and clears its timer', async () => {
    vi.useFakeTimers();
    await expect(settledWithin(Promise.resolve('x'), 50)).resolves.toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    const waiting = settledWithin(new Promise(() => {}), 50);
    await vi.advanceTimersByTimeAsync(50);
    await expect(waiting).resolves.toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects when the promise rejects first', async () => {
    await expect(settledWithin(Promise.reject(new Error('no')), 50)).rejects.toThrow('no');
  });
});
