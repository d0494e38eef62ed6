/**
 * `MQ_URL='sqs://?region=us-east-1&endpoint=http%3A%2F%2F127.0.0.1%3A4566' pnpm start`: declares
 * the topic and its filtered groups, publishes four events, prints which group got which, exits.
 */
import { redactUrl } from '@mqkit/core';
import { connectFanout, consumeGroups, GROUPS, publishEvent, type GroupName, type OrderEvent } from './fanout.ts';

const url = process.env.MQ_URL ?? 'sqs://?region=us-east-1';
const topic = process.env.TOPIC ?? `order-events-${Date.now().toString(36)}`;

const client = await connectFanout(url, topic);
console.log(`declared ${topic} on ${redactUrl(url)} with groups ${Object.keys(GROUPS).join(', ')}`);

const events: OrderEvent[] = [
  { orderId: 'A-1', type: 'order.created', region: 'eu' },
  { orderId: 'A-2', type: 'order.created', region: 'us' },
  { orderId: 'A-1', type: 'order.refunded', region: 'eu' },
  { orderId: 'A-3', type: 'order.cancelled', region: 'us' },
];
// Expected per group: what its filter policy selects.
const expected: Record<GroupName, number> = { 'eu-warehouse': 2, refunds: 2, audit: 4 };
const got: Record<GroupName, string[]> = { 'eu-warehouse': [], refunds: [], audit: [] };
for (const event of events) await publishEvent(client, topic, event);

await consumeGroups(client, topic, (group, event) => {
  got[group].push(`${event.orderId} ${event.type} (${event.region})`);
});
const deadline = Date.now() + 30_000;
const done = (): boolean => (Object.keys(expected) as GroupName[]).every((g) => got[g].length >= expected[g]);
while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
for (const [group, list] of Object.entries(got)) console.log(`${group.padEnd(12)} ${list.join(', ')}`);
await client.close();
console.log(done() ? 'OK: each group got only what its filter policy selects' : 'timed out waiting for the groups');
process.exitCode = done() ? 0 : 1;
