import { describe, expect, it } from 'vitest';
import { DEFAULT_GROUP_RETRIES, groupRetriesFor, UNLIMITED_GROUP_RETRIES } from './retry-limit.ts';

// Defect 4 (issue #16): the broker moves a message to %DLQ%<group> after the group's
// retryMaxTimes redeliveries (16 by default); that must never happen before core's maxAttempts.
describe('groupRetriesFor', () => {
  it('leaves a margin above maxAttempts, so the default group suffices up to maxAttempts 14', () => {
    expect(groupRetriesFor(5)).toBe(7);
    expect(groupRetriesFor(14)).toBeLessThanOrEqual(DEFAULT_GROUP_RETRIES);
    expect(groupRetriesFor(15)).toBeGreaterThan(DEFAULT_GROUP_RETRIES);
    expect(groupRetriesFor(25)).toBe(27);
  });

  it('is the unlimited stand-in for Infinity and never exceeds it', () => {
    expect(groupRetriesFor(Number.POSITIVE_INFINITY)).toBe(UNLIMITED_GROUP_RETRIES);
    expect(groupRetriesFor(UNLIMITED_GROUP_RETRIES * 2)).toBe(UNLIMITED_GROUP_RETRIES);
    expect(UNLIMITED_GROUP_RETRIES).toBeLessThan(2 ** 31 - 16);
  });
});
