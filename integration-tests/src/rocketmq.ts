/**
 * RocketMQ 5 topics are typed (NORMAL, FIFO, DELAY, TRANSACTION) and must exist before a gRPC
 * client can use them. Suites that want their own topics (unique per run) create them here:
 *
 *   const topic = uniqueTopic('orders');
 *   await createRocketmqTopics([`${topic}:NORMAL`]);
 *
 * Native brokers: `scripts/brokers/brokers.sh rocketmq-topic NAME:TYPE…`; testcontainers: mqadmin
 * inside the container; endpoints from MQKIT_ROCKETMQ_ENDPOINTS: the command named by
 * MQKIT_ROCKETMQ_TOPIC_CMD (called with the NAME:TYPE arguments), else an error.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Producer } from 'rocketmq-client-nodejs';
import { createRocketmqTopicsInContainer } from './containers.ts';
import { resolvedBroker } from './endpoints.ts';
import { REPO_ROOT, errText, sleep } from './resolve.ts';

const run = promisify(execFile);

export type RocketmqTopicType = 'NORMAL' | 'FIFO' | 'DELAY' | 'TRANSACTION';

/** A logger that keeps the client quiet (it logs to files/console by default). */
export const quietRocketmqLogger = {
  info() {},
  warn() {},
  error() {},
  debug() {},
  close() {},
};

export async function createRocketmqTopics(specs: readonly string[]): Promise<void> {
  for (const s of specs) {
    if (!/^[%A-Za-z0-9_-]{1,127}:(NORMAL|FIFO|DELAY|TRANSACTION)$/.test(s)) throw new Error(`bad RocketMQ topic spec "${s}" (want NAME:TYPE)`);
  }
  const r = resolvedBroker('rocketmq');
  if (r.source === 'testcontainers') {
    if (!r.containerId) throw new Error('RocketMQ container id missing');
    await createRocketmqTopicsInContainer(r.containerId, specs);
  } else {
    const custom = process.env.MQKIT_ROCKETMQ_TOPIC_CMD?.trim();
    if (r.source === 'env' && !custom) {
      throw new Error(
        `cannot create RocketMQ topics ${specs.join(' ')} on ${r.endpoint.endpoints} (from MQKIT_ROCKETMQ_ENDPOINTS): ` +
          'set MQKIT_ROCKETMQ_TOPIC_CMD to a command that takes NAME:TYPE arguments, or pre-create them',
      );
    }
    const [cmd, ...pre] = custom ? custom.split(/\s+/) : ['bash', join(REPO_ROOT, 'scripts', 'brokers', 'brokers.sh'), 'rocketmq-topic'];
    try {
      await run(cmd!, [...pre, ...specs], { cwd: REPO_ROOT, timeout: 180_000, maxBuffer: 4 << 20 });
    } catch (e) {
      const x = e as { stderr?: string; stdout?: string };
      throw new Error(`creating RocketMQ topics ${specs.join(' ')} with "${[cmd, ...pre].join(' ')}" failed: ${errText(e)}\n${x.stderr ?? ''}${x.stdout ?? ''}`, { cause: e });
    }
  }
  await Promise.all(specs.map((s) => waitForTopicRoute(s.split(':')[0]!, r.endpoint.endpoints)));
}

/** Waits until the proxy knows the topic's route (a producer declaring the topic starts up). */
export async function waitForTopicRoute(topic: string, endpoints: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const p = new Producer({ endpoints, namespace: '', topic, logger: quietRocketmqLogger, maxAttempts: 1 });
    try {
      await p.startup();
      await p.shutdown().catch(() => {});
      return;
    } catch (e) {
      last = errText(e);
      await p.shutdown().catch(() => {});
      await sleep(500);
    }
  }
  throw new Error(`RocketMQ topic ${topic} has no route after ${timeoutMs} ms: ${last}`);
}
