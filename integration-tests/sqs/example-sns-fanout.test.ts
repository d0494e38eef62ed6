/**
 * The sns-fanout example (examples/sns-fanout) on moto's SNS + SQS: one topic, three groups; each
 * group gets exactly what its filter policy selects, including what was published before its
 * consumer started (the groups were declared first).
 */
import type { Client, Delivery, Subscription } from '@mqkit/core';
import { afterAll, expect, it } from 'vitest';
import { uniqueName } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';
import { EMULATOR_CREDENTIALS, sqsUrl } from './harness.ts';

// The example is not a dependency of this package: its sources are loaded by URL (typed by hand
// below) so this project's typecheck stays within its own folder.
interface OrderEvent {
  orderId: string;
  type: 'order.created' | 'order.refunded' | 'order.cancelled';
  region: 'eu' | 'us';
}
type GroupName = 'eu-warehouse' | 'refunds' | 'audit';
const example = (await import(new URL('../../examples/sns-fanout/src/fanout.ts', import.meta.url).href)) as {
  GROUPS: Record<GroupName, { filterPolicy?: Record<string, string[]> }>;
  connectFanout(url: string, topic: string, options?: Record<string, unknown>): Promise<Client>;
  publishEvent(client: Client, topic: string, event: OrderEvent): Promise<void>;
  consumeGroups(client: Client, topic: string, onEvent: (group: GroupName, event: OrderEvent, d: Delivery<OrderEvent>) => void): Promise<Subscription[]>;
};

const clients: Client[] = [];
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close({ timeoutMs: 0 })));
});

it('each group receives only what its filter policy selects, published before or after its consumer started', async () => {
  const topic = uniqueName('example-fanout');
  const client = await example.connectFanout(sqsUrl('sns'), topic, { credentials: EMULATOR_CREDENTIALS });
  clients.push(client);
  const got: Record<GroupName, string[]> = { 'eu-warehouse': [], refunds: [], audit: [] };
  const early: OrderEvent[] = [
    { orderId: 'A-1', type: 'order.created', region: 'eu' },
    { orderId: 'A-2', type: 'order.created', region: 'us' },
  ];
  const late: OrderEvent[] = [
    { orderId: 'A-1', type: 'order.refunded', region: 'eu' },
    { orderId: 'A-3', type: 'order.cancelled', region: 'us' },
  ];
  for (const e of early) await example.publishEvent(client, topic, e);
  await example.consumeGroups(client, topic, (group, e) => void got[group].push(`${e.orderId}:${e.type}`));
  for (const e of late) await example.publishEvent(client, topic, e);

  await waitFor('every group', () => got.audit.length >= 4 && got.refunds.length >= 2 && got['eu-warehouse'].length >= 2, { timeoutMs: 45_000 });
  await sleep(2_000); // nothing unselected may arrive later
  expect(got['eu-warehouse'].sort()).toEqual(['A-1:order.created', 'A-1:order.refunded']);
  expect(got.refunds.sort()).toEqual(['A-1:order.refunded', 'A-3:order.cancelled']);
  expect(got.audit.sort()).toEqual(['A-1:order.created', 'A-1:order.refunded', 'A-2:order.created', 'A-3:order.cancelled']);
}, 90_000);

it('connectFanout declares the topic, a queue per group and the dead-letter topic (verify passes)', async () => {
  const topic = uniqueName('example-fanout-verify');
  const client = await example.connectFanout(sqsUrl('sns'), topic, { credentials: EMULATOR_CREDENTIALS });
  clients.push(client);
  await client.verify({ topic, groups: Object.keys(example.GROUPS), deadLetter: true });
}, 60_000);
