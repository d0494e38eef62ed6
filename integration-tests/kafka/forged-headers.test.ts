/**
 * Internal headers written by a foreign raw producer on the same topic (#16 defect 12): a forged
 * `x-mqkit-deliver-at` must not park a message for ever (beyond now + the longest delay it is
 * ignored), and no header can set the attempt count on Kafka (attempts come from the group's
 * offset-commit metadata, which only group members write).
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueGroup } from '../src/names.ts';
import { waitFor } from '../src/wait.ts';
import { brokers, closeAll, createTopic, openKafka } from './harness.ts';

const producer = new Kafka({ clientId: 'mqkit-it-forger', brokers: brokers.split(','), logLevel: logLevel.NOTHING }).producer();

afterAll(async () => {
  await closeAll();
  await producer.disconnect().catch(() => {});
});

describe('kafka: forged x-mqkit- headers from a raw producer', () => {
  it('a deliver-at 20 days ahead is ignored, and prior-attempts / attempts headers do not skip retries', async () => {
    const topic = await createTopic('forged', 1);
    await producer.connect();
    // 20 days: beyond the 15-minute maximum, yet within a Node timer's range (a year would overflow
    // setTimeout, which then fires at once and hides the problem).
    const farAhead = String(Date.now() + 20 * 24 * 3_600_000);
    await producer.send({
      topic,
      messages: [
        { key: 'a', value: JSON.stringify({ n: 'parked' }), headers: { 'x-mqkit-deliver-at': farAhead } },
        { key: 'b', value: JSON.stringify({ n: 'counted' }), headers: { 'x-mqkit-prior-attempts': '99', 'x-mqkit-attempts': '99', 'x-mqkit-id': 'forged-id' } },
      ],
    });
    const client = await openKafka();
    const seen: Array<[string, number]> = [];
    const dead: string[] = [];
    await client.subscribe(`${topic}-dlq`, { group: uniqueGroup('forged-dlq'), handler: (d) => void dead.push(d.id) });
    await client.subscribe<{ n: string }>(topic, {
      group: uniqueGroup('forged'),
      retry: { maxAttempts: 3, initialDelayMs: 50, maxDelayMs: 50 },
      handler: (d) => {
        seen.push([d.payload.n, d.attempt]);
        if (d.payload.n === 'counted') throw new Error('fails every time');
      },
    });
    await waitFor('the parked message now, and the failing one dead-lettered', () => seen.some(([n]) => n === 'parked') && dead.length > 0, { timeoutMs: 30_000 });
    expect(seen.filter(([n]) => n === 'parked')).toEqual([['parked', 1]]);
    // Every retry ran: attempts 1, 2, 3 and then the dead-letter topic.
    expect(seen.filter(([n]) => n === 'counted').map(([, a]) => a)).toEqual([1, 2, 3]);
    expect(dead).toEqual(['forged-id']);
  }, 90_000);
});
