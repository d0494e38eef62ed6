/**
 * The `mqkit` CLI on the real Kafka (#20): the shared scenario (src/cli-scenario.ts); here the
 * dead-letter topic is the Kafka topic `<topic>-dlq`, read by a throwaway group that commits
 * nothing, and a replayed record is removed with DeleteRecords (from the partition's start only,
 * so a filtered replay is refused); `lag` is per partition (high watermark - committed offset).
 */
import type { DlqLsDocument, DlqReplayDocument } from '@mqkit/cli';
import { kafka } from '@mqkit/kafka';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { dlqScenario, healthScenario, mqkit, topologyScenario } from '../src/cli-scenario.ts';
import { uniqueGroup, uniqueTopic } from '../src/names.ts';
import { brokers, closeAdmin, createTopic, kafkaUrl } from './harness.ts';

afterAll(async () => {
  await closeAdmin();
});

describe('mqkit CLI on kafka (#20)', () => {
  it('dlq ls/show/replay, lag per partition and a fixed consumer getting everything', async () => {
    const topic = await createTopic('cli', 3);
    await dlqScenario({ url: kafkaUrl, adapter: kafka(), topic, group: uniqueGroup('billing') });
  }, 180_000);

  it('topology verify/plan/apply: what is missing, created, then kept for the declared group (#22)', async () => {
    await topologyScenario({ url: kafkaUrl, adapter: kafka(), topic: uniqueTopic('topo'), group: uniqueGroup('billing') });
  }, 180_000);

  it('health exits 0, and 1 on an unreachable broker', async () => {
    const topic = await createTopic('health', 1);
    await healthScenario(kafkaUrl, 'kafka://127.0.0.1:1', topic);
  }, 120_000);

  it('unknown topic exits 2; a replay that would leave a gap is refused (a log is truncated from its start only), its dry run is not; purge empties the topic', async () => {
    const missing = await mqkit(['dlq', 'show', 'no-such-topic-for-mqkit-cli', '--url', kafkaUrl]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('mqkit: NOT_FOUND: topic "no-such-topic-for-mqkit-cli-dlq" does not exist\n');
    const topic = await createTopic('clipurge', 1);
    // Two dead letters with different reasons, written as core writes them.
    const producer = new Kafka({ clientId: 'mqkit-it-cli', brokers: brokers.split(','), logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    try {
      await producer.send({
        topic: `${topic}-dlq`,
        messages: ['decode-failed', 'handler-failed'].map((reason, i) => ({ value: JSON.stringify({ i }), headers: { 'x-mqkit-id': `m${i}`, 'x-mqkit-dead-letter-reason': reason, 'x-mqkit-original-topic': topic } })),
      });
    } finally {
      await producer.disconnect();
    }
    const filtered = await mqkit(['dlq', 'replay', topic, '--reason', 'handler-failed', '--url', kafkaUrl]);
    expect(filtered.code).toBe(2);
    expect(filtered.stderr).toBe('mqkit: UNSUPPORTED: kafka: cannot replay with this filter: it removes messages only from the oldest on; replay without --reason/--group, or --dry-run to see them\n');
    expect((await mqkit(['dlq', 'ls', topic, '--json', '--url', kafkaUrl])).json<DlqLsDocument>().deadLetterTopics[0]).toMatchObject({ depth: 2, reasons: { 'decode-failed': 1, 'handler-failed': 1 } });
    const dry = await mqkit(['dlq', 'replay', topic, '--reason', 'handler-failed', '--dry-run', '--json', '--url', kafkaUrl]);
    expect(dry.json<DlqReplayDocument>().messages).toEqual([{ id: 'm1', to: topic, status: 'would-replay' }]);
    const r = await mqkit(['dlq', 'purge', topic, '--yes', '--json', '--url', kafkaUrl]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toEqual({ adapter: 'kafka', topic: `${topic}-dlq`, purged: 2 });
    expect((await mqkit(['dlq', 'ls', topic, '--json', '--url', kafkaUrl])).json<DlqLsDocument>().deadLetterTopics[0]?.depth).toBe(0);
  }, 120_000);
});
