import { describe, expect, it } from 'vitest';
import { fitName, groupQueueName, isFifo, nativeTopicName, TOPIC_PATTERN, topicQueueName } from './names.ts';

describe('names', () => {
  it('maps FIFO dead-letter topics to native FIFO names', () => {
    expect(nativeTopicName('orders.fifo-dlq')).toBe('orders-dlq.fifo');
    expect(nativeTopicName('orders.fifo-dlq-dlq')).toBe('orders-dlq-dlq.fifo');
    expect(nativeTopicName('orders.fifo')).toBe('orders.fifo');
    expect(nativeTopicName('orders-dlq')).toBe('orders-dlq');
    expect(isFifo('orders.fifo-dlq')).toBe(true);
    expect(isFifo('orders')).toBe(false);
  });

  it('accepts SQS/SNS-safe topic names only', () => {
    for (const ok of ['orders', 'a_b-c', 'orders.fifo', 'orders.fifo-dlq']) expect(TOPIC_PATTERN.test(ok)).toBe(true);
    for (const bad of ['', 'a.b', 'a b', 'orders.fifo.x', 'ü']) expect(TOPIC_PATTERN.test(bad)).toBe(false);
  });

  it('fits long names into 80 characters, keeping .fifo and distinctness', () => {
    const a = fitName(`${'x'.repeat(100)}a.fifo`);
    const b = fitName(`${'x'.repeat(100)}b.fifo`);
    expect(a).toHaveLength(80);
    expect(a.endsWith('.fifo')).toBe(true);
    expect(a).not.toBe(b);
    expect(fitName('short')).toBe('short');
    expect(topicQueueName(`${'y'.repeat(90)}`)).toHaveLength(80);
  });

  it('names group queues per topic and group', () => {
    expect(groupQueueName('orders', 'billing')).toBe('orders__billing');
    expect(groupQueueName('orders.fifo', 'billing')).toBe('orders__billing.fifo');
    expect(groupQueueName('orders.fifo-dlq', 'billing')).toBe('orders-dlq__billing.fifo');
    const odd = groupQueueName('orders', 'billing:eu');
    expect(odd).toMatch(/^orders__billing_eu-[0-9a-f]{8}$/);
    expect(odd).not.toBe(groupQueueName('orders', 'billing_eu'));
  });
});
