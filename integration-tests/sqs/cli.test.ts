/**
 * The `mqkit` CLI on SQS (#20): the shared scenario (src/cli-scenario.ts) in queue mode on
 * ElasticMQ (the dead-letter topic is the queue `<topic>-dlq`) and in SNS mode on moto (each
 * group keeps its own dead-letter queue `<topic>-dlq__<group>`, picked with --group or as the
 * only one). The CLI takes credentials from the AWS provider chain, as `npx mqkit` would.
 */
import type { DlqLsDocument, LagDocument } from '@mqkit/cli';
import { sqs } from '@mqkit/sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dlqScenario, healthScenario, mqkit, topologyScenario } from '../src/cli-scenario.ts';
import { uniqueGroup, uniqueName } from '../src/names.ts';
import { deleteTopicQueues, EMULATOR_CREDENTIALS, sqsUrl } from './harness.ts';

const queueTopics: string[] = [];
const fresh = (prefix: string): string => {
  const t = uniqueName(prefix);
  queueTopics.push(t);
  return t;
};

beforeAll(() => {
  process.env.AWS_ACCESS_KEY_ID ??= EMULATOR_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY ??= EMULATOR_CREDENTIALS.secretAccessKey;
});

afterAll(async () => {
  await deleteTopicQueues(queueTopics);
}, 60_000);

const subscribeOptions = { options: { waitTimeSec: 1 } };

describe('mqkit CLI on sqs, queue mode on ElasticMQ (#20)', () => {
  const url = sqsUrl('queue');

  it('dlq ls/show/replay, lag and a fixed consumer getting everything', async () => {
    await dlqScenario({ url, adapter: sqs(), topic: fresh('cli'), group: uniqueGroup('billing'), subscribeOptions });
  }, 120_000);

  it('topology verify/plan/apply: what is missing, created, then kept for the declared group (#22)', async () => {
    await topologyScenario({ url, adapter: sqs(), topic: fresh('topo'), group: uniqueGroup('billing'), subscribeOptions });
  }, 120_000);

  it('health exits 0, and 1 on an unreachable endpoint', async () => {
    await healthScenario(url, 'sqs://?region=us-east-1&endpoint=http%3A%2F%2F127.0.0.1%3A1&sns=false', fresh('health'));
  }, 60_000);

  it('an unknown dead-letter queue exits 2 with one line', async () => {
    const r = await mqkit(['dlq', 'show', fresh('nothing'), '--url', url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^mqkit: NOT_FOUND: GetQueueUrl .*-dlq failed: .*\n$/);
  }, 30_000);

  it('purge empties the dead-letter queue', async () => {
    const topic = fresh('purge');
    const { connect } = await import('@mqkit/core');
    const client = await connect(url, { adapters: [sqs()], topology: 'create' });
    try {
      await client.declare({ topic, groups: [], deadLetter: true });
      await client.publish(`${topic}-dlq`, { x: 1 });
    } finally {
      await client.close();
    }
    // (`dlq ls` without a topic would read every -dlq queue of the shared emulator, other suites' too.)
    expect((await mqkit(['dlq', 'ls', topic, '--json', '--url', url])).json<DlqLsDocument>().deadLetterTopics[0]?.depth).toBe(1);
    const r = await mqkit(['dlq', 'purge', topic, '--yes', '--json', '--url', url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toEqual({ adapter: 'sqs', topic: `${topic}-dlq`, purged: 1 });
    expect((await mqkit(['dlq', 'ls', topic, '--json', '--url', url])).json<DlqLsDocument>().deadLetterTopics[0]?.depth).toBe(0);
  }, 60_000);
});

describe('mqkit CLI on sqs, SNS mode on moto (#20)', () => {
  const url = sqsUrl('sns');

  it('dlq ls/show/replay on the group dead-letter queue, lag and a fixed consumer getting everything', async () => {
    await dlqScenario({ url, adapter: sqs(), topic: uniqueName('clisns'), group: uniqueGroup('billing'), subscribeOptions });
  }, 180_000);

  it('topology verify/plan/apply: the SNS topic, the group queue and its dead-letter queue, then kept for the declared group (#22)', async () => {
    await topologyScenario({ url, adapter: sqs(), topic: uniqueName('toposns'), group: uniqueGroup('billing'), subscribeOptions });
  }, 180_000);

  it('two groups on one dead-letter topic: --group is needed and names them', async () => {
    const topic = uniqueName('clisns2');
    const { connect } = await import('@mqkit/core');
    const client = await connect(url, { adapters: [sqs()], topology: 'create' });
    try {
      await client.declare({ topic, groups: ['a', 'b'], deadLetter: true });
    } finally {
      await client.close();
    }
    const r = await mqkit(['dlq', 'show', topic, '--url', url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`mqkit: CONFIG: each group keeps its own copy of "${topic}-dlq" on SQS: pass --group (one of a, b)`);
    const ok = await mqkit(['dlq', 'show', topic, '--group', 'b', '--json', '--url', url]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.json()).toMatchObject({ topic: `${topic}-dlq`, depth: 0, messages: [] });
    const lag = await mqkit(['lag', topic, '--json', '--url', url]);
    expect(lag.json<LagDocument>().groups.map((g: { group: string }) => g.group)).toEqual(['a', 'b']);
  }, 60_000);
});
