import { describe, expect, it } from 'vitest';
import { delayBucket, groupQueueName, isDelayQueueOf, publishDelayQueueName, retryDelayQueueName, TOPIC_PATTERN } from './names.ts';

describe('names', () => {
  it('derives queue names from topic and group', () => {
    expect(groupQueueName('orders', 'billing')).toBe('orders.billing');
    expect(publishDelayQueueName('orders', 1000)).toBe('orders~delay~1000');
    expect(retryDelayQueueName('orders.billing', 200)).toBe('orders.billing~retry~200');
  });

  it('recognises a group queue\'s own delay queues only (this version\'s and the classic ones before it)', () => {
    expect(isDelayQueueOf('orders.billing~retry~200', 'orders.billing')).toBe(true);
    expect(isDelayQueueOf('orders.billing~delay~200', 'orders.billing')).toBe(true);
    expect(isDelayQueueOf('orders.billingx~retry~200', 'orders.billing')).toBe(false);
    expect(isDelayQueueOf('orders.other~retry~200', 'orders.billing')).toBe(false);
    expect(isDelayQueueOf('orders.billing~retry~', 'orders.billing')).toBe(false);
    expect(isDelayQueueOf('orders.billing', 'orders.billing')).toBe(false);
  });

  it('accepts ordinary topic names and refuses the amq. namespace and oddities', () => {
    for (const ok of ['orders', 'orders.created', 'a-b_c:d', 'x'.repeat(120)]) expect(TOPIC_PATTERN.test(ok)).toBe(true);
    for (const bad of ['', 'amq.topic', '-x', 'with space', 'x'.repeat(121), 'slash/no']) expect(TOPIC_PATTERN.test(bad)).toBe(false);
  });
});

describe('delayBucket', () => {
  it('never rounds down and stays within 10 % (or 10 ms) of the delay', () => {
    for (const d of [1, 9, 10, 11, 99, 100, 101, 150, 999, 1000, 1001, 1234, 9999, 65_432, 3_600_000, 86_400_000]) {
      const b = delayBucket(d);
      expect(b).toBeGreaterThanOrEqual(d);
      expect(b - d).toBeLessThanOrEqual(Math.max(10, d * 0.1));
    }
  });

  it('groups similar delays into few buckets', () => {
    const buckets = new Set<number>();
    for (let d = 100; d <= 30_000; d += 7) buckets.add(delayBucket(d));
    expect(buckets.size).toBeLessThanOrEqual(3 * 90);
    expect(delayBucket(1000)).toBe(1000);
    expect(delayBucket(1001)).toBe(1100);
    expect(delayBucket(55)).toBe(60);
  });
});
