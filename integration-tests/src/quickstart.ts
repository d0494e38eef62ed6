/**
 * The README's quickstart as code (#22): connect by URL alone (the adapter package is found by the
 * URL's scheme, none passed in) with `topology: 'create'`, subscribe to a new topic, publish 10,
 * receive all 10 once each, close. Every broker's topology suite runs it on its broker.
 */
import { connect, idempotent, MemoryDedupStore } from '@mqkit/core';
import { expect } from 'vitest';

export async function runQuickstart(url: string, topic: string, group: string): Promise<void> {
  const mq = await connect(url, { topology: 'create' });
  try {
    const charged = new Map<string, number>();
    await mq.subscribe<{ orderId: string }>(topic, {
      group,
      concurrency: 8,
      retry: { maxAttempts: 5 },
      middleware: [idempotent(new MemoryDedupStore())],
      handler: async (msg) => void charged.set(msg.payload.orderId, (charged.get(msg.payload.orderId) ?? 0) + 1),
    });
    const ids = Array.from({ length: 10 }, (_, n) => `A-${1000 + n}`);
    await Promise.all(ids.map((orderId, n) => mq.publish(topic, { orderId }, { id: `order-created:${orderId}`, key: `customer-${n % 3}` })));
    const deadline = Date.now() + 30_000;
    while (charged.size < ids.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect([...charged.keys()].sort()).toEqual(ids);
    expect([...charged.values()].every((n) => n === 1)).toBe(true);
  } finally {
    await mq.close();
  }
}
