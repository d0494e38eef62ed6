/**
 * A consumer process for fault-consumer-killed.test.ts, SIGKILLed by the test while it holds
 * unacked messages. Args: url topic group concurrency. Handles even `n` (prints `done <id>`), and
 * holds odd `n` forever (prints `held <id>`): those stay unacked until the process dies.
 */
import { connect } from '@mqkit/core';
import { rabbitmq } from '@mqkit/rabbitmq';

const [url, topic, group, concurrency] = process.argv.slice(2);
if (!url || !topic || !group) throw new Error('usage: consumer-child.ts url topic group concurrency');
const client = await connect(url, { adapters: [rabbitmq()] });
await client.subscribe<{ n: number }>(topic, {
  group,
  concurrency: Number(concurrency ?? 20),
  handler: async (d) => {
    if (d.payload.n % 2 === 0) {
      process.stdout.write(`done ${d.id}\n`);
      return;
    }
    process.stdout.write(`held ${d.id}\n`);
    await new Promise<void>(() => {});
  },
});
process.stdout.write('ready\n');
