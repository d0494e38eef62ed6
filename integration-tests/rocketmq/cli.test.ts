/**
 * The `mqkit` CLI on RocketMQ 5 (#20): the shared scenario (src/cli-scenario.ts) over the proxy,
 * with the operations on the name server and broker (remoting): the dead-letter topic
 * `<topic>-dlq` is read with PULL_MESSAGE (nothing committed) from the `mqkit-dlq` group's offset,
 * which a replay moves past each message it republished; `lag` is max offset - group offset per
 * queue.
 */
import { rocketmq } from '@mqkit/rocketmq';
import { describe, expect, it } from 'vitest';
import { dlqScenario, healthScenario, mqkit, topologyScenario } from '../src/cli-scenario.ts';
import { uniqueGroup, uniqueTopic } from '../src/names.ts';
import { INVISIBLE_MS, rocketmqEndpoint } from './mqkit-support.ts';

const { endpoints, namesrv } = rocketmqEndpoint();
const url = `rocketmq://${endpoints.split(';').join(',')}?namesrv=${namesrv}`;

describe('mqkit CLI on rocketmq (#20)', () => {
  it('dlq ls/show/replay, lag per queue and a fixed consumer getting everything', async () => {
    await dlqScenario({
      url,
      adapter: rocketmq(),
      topic: uniqueTopic('cli'),
      group: uniqueGroup('billing'),
      connectOptions: { options: { invisibleDurationMs: INVISIBLE_MS, awaitDurationMs: 2000 } },
    });
  }, 240_000);

  it('topology verify/plan/apply: what is missing, created, then kept for the declared group (#22)', async () => {
    await topologyScenario({
      url,
      adapter: rocketmq(),
      topic: uniqueTopic('topo'),
      group: uniqueGroup('billing'),
      connectOptions: { options: { invisibleDurationMs: INVISIBLE_MS, awaitDurationMs: 2000 } },
    });
  }, 240_000);

  it('health exits 0, and 1 on an unreachable proxy', async () => {
    await healthScenario(url, 'rocketmq://127.0.0.1:1?namesrv=127.0.0.1:2', uniqueTopic('health'));
  }, 120_000);

  it('unknown topic exits 2; without namesrv dlq is a CONFIG error naming the option', async () => {
    const missing = await mqkit(['dlq', 'show', uniqueTopic('nothing'), '--url', url]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^mqkit: NOT_FOUND: topic ".*-dlq" does not exist\n$/);
    const noNamesrv = await mqkit(['dlq', 'ls', 'x', '--url', `rocketmq://${endpoints.split(';')[0]}`]);
    expect(noNamesrv.code).toBe(2);
    expect(noNamesrv.stderr).toBe('mqkit: CONFIG: rocketmq: dlq and lag need the name server: add ?namesrv=host:9876 to the URL\n');
  }, 60_000);
});
