/**
 * Deletes what a suite's topics left on the shared broker (group, delay and dead-letter queues,
 * exchanges): quorum queues pile up across runs and slow every broker restart.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { REPO_ROOT } from '../src/resolve.ts';

const run = promisify(execFile);

async function list(what: 'list_queues' | 'list_exchanges'): Promise<string[]> {
  const { stdout } = await run('bash', [join(REPO_ROOT, 'scripts', 'brokers', 'brokers.sh'), 'rabbitmqctl', what, '-q', 'name'], {
    cwd: REPO_ROOT,
    timeout: 60_000,
  });
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && l !== 'name');
}

/** Removes every queue and exchange named after one of `topics` (`T`, `T.*` including the delay queues `T.G~retry~*`, `T-dlq*`, and the `T~delay~*` of earlier versions). */
export async function deleteTopicResources(url: string, topics: Iterable<string>): Promise<number> {
  const prefixes = [...topics];
  if (prefixes.length === 0) return 0;
  const mine = (name: string): boolean => prefixes.some((t) => name === t || name.startsWith(`${t}.`) || name.startsWith(`${t}-dlq`) || name.startsWith(`${t}~`));
  const started = Date.now();
  const [queues, exchanges] = await Promise.all([list('list_queues'), list('list_exchanges')]);
  const conn = await amqp.connect(url);
  conn.on('error', () => {});
  let deleted = 0;
  // A quorum queue whose Raft member is still recovering (right after a broker restart) can make
  // queue.delete wait for minutes: bound the whole cleanup, it is hygiene, not a test.
  const budget = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), 20_000).unref());
  const work = (async () => {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    for (const q of queues.filter(mine)) {
      await ch.deleteQueue(q);
      deleted += 1;
    }
    for (const x of exchanges.filter(mine)) {
      await ch.deleteExchange(x);
      deleted += 1;
    }
    await ch.close();
  })();
  try {
    if ((await Promise.race([work, budget])) === 'late') console.warn('[rabbitmq cleanup] gave up after 20 s; some queues are left');
  } finally {
    await conn.close().catch(() => {});
  }
  console.info(`[rabbitmq cleanup] deleted ${deleted} queues/exchanges in ${Date.now() - started} ms`);
  return deleted;
}
