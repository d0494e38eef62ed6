/**
 * Issue 16, defect 9 on SQS (ElasticMQ; the SNS emulator is paused too, it is one broker entry):
 * the emulator processes paused (SIGSTOP) with SendMessageBatch calls in flight. publish.timeoutMs
 * is a hard deadline and pending publishes stay within publish.maxPending; after SIGCONT
 * publishes succeed again.
 */
import { sqs } from '@mqkit/sqs';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../src/names.ts';
import { publishStallScenario, STALL_TIMEOUT_MS } from '../src/publish-stall.ts';
import { deleteTopicQueues, EMULATOR_CREDENTIALS, sqsUrl } from './harness.ts';

const topics: string[] = [];
afterAll(() => deleteTopicQueues(topics), 60_000);

describe('sqs: emulator processes paused (SIGSTOP)', () => {
  it(`publish rejects at ${STALL_TIMEOUT_MS} ms, pending stays bounded, and publishing recovers after SIGCONT`, async () => {
    const seen = await publishStallScenario({
      broker: 'sqs',
      url: sqsUrl('queue'),
      adapter: sqs(),
      options: { credentials: EMULATOR_CREDENTIALS },
      sendsHang: false, // the adapter's requestTimeoutMs (10 s) is too close to the pause to rely on
      prepare: async () => {
        const topic = uniqueName('stall');
        topics.push(topic);
        return topic;
      },
    });
    expect(seen.lastTimeoutMs).toBeLessThan(STALL_TIMEOUT_MS + 1_500);
  }, 180_000);
});
