/**
 * Issue #16 on the SQS emulators: retry policies beyond SQS's 1,000-receive redrive limit
 * (defect 4), empty payloads (defect 5), `mqkit` attributes forged by a raw producer (defect 12)
 * and an always-nacking handler (defect 1). Queue mode on ElasticMQ, SNS mode on moto.
 */
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { MqError, bytesCodec, type Client } from '@mqkit/core';
import type { Logger } from '@mqkit/core/driver';
import { sqs, topicQueueName, groupQueueName, META_ATTRIBUTE } from '@mqkit/sqs';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueGroup, uniqueTopic } from '../src/names.ts';
import { attemptsOf, expectNackLoopKeepsTimers, expectUnlimitedDriverDelivers, subscribeAlwaysFailing, subscribeForgedTargets } from '../src/adversarial.ts';
import { waitFor } from '../src/wait.ts';
import { connectSqs, deleteTopicQueues, EMULATOR_CREDENTIALS, rawConfig, sqsUrl } from './harness.ts';

const clients: Client[] = [];
const topics: string[] = [];
const raw = { queue: new SQSClient(rawConfig('queue')), sns: new SQSClient(rawConfig('sns')) };

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close({ timeoutMs: 0 })));
  await deleteTopicQueues(topics);
  raw.queue.destroy();
  raw.sns.destroy();
});

const warnings: Array<{ obj: object; msg: string | undefined }> = [];
const logger: Logger = {
  debug() {},
  info() {},
  warn: (obj: object, msg?: string) => void warnings.push({ obj, msg }),
  error() {},
};

async function client(mode: 'queue' | 'sns'): Promise<Client> {
  const c = await connectSqs(mode, { logger });
  clients.push(c);
  return c;
}

function topic(prefix: string): string {
  const t = uniqueTopic(prefix);
  topics.push(t);
  return t;
}

async function queueUrl(mode: 'queue' | 'sns', name: string): Promise<string> {
  const { GetQueueUrlCommand } = await import('@aws-sdk/client-sqs');
  const r = await raw[mode].send(new GetQueueUrlCommand({ QueueName: name }));
  return r.QueueUrl!;
}

async function redrivePolicy(mode: 'queue' | 'sns', name: string): Promise<{ maxReceiveCount: number } | undefined> {
  const r = await raw[mode].send(new GetQueueAttributesCommand({ QueueUrl: await queueUrl(mode, name), AttributeNames: ['RedrivePolicy'] }));
  const policy = r.Attributes?.RedrivePolicy;
  if (!policy) return undefined;
  const parsed = JSON.parse(policy) as { maxReceiveCount: number | string };
  return { maxReceiveCount: Number(parsed.maxReceiveCount) };
}

/** The queue a group consumes from in each mode. */
const consumedQueue = (mode: 'queue' | 'sns', t: string, group: string): string => (mode === 'queue' ? topicQueueName(t) : groupQueueName(t, group));

describe('defect 4: retry.maxAttempts beyond the 1,000-receive redrive limit', () => {
  for (const mode of ['queue', 'sns'] as const) {
    it(`${mode} mode: maxAttempts 1500 subscribes (no redrive policy) and the message is handled`, async () => {
      const c = await client(mode);
      const t = topic('mra1500');
      const group = uniqueGroup('g');
      const got: number[] = [];
      await c.subscribe(t, { group, retry: { maxAttempts: 1500 }, handler: (d) => void got.push(d.attempt) });
      expect(await redrivePolicy(mode, consumedQueue(mode, t, group))).toBeUndefined();
      await c.publish(t, { n: 1 });
      await waitFor('the delivery', () => got.length >= 1, { timeoutMs: 20_000 });
      expect(got).toEqual([1]);
    }, 60_000);
  }

  it('maxAttempts Infinity subscribes at the driver (no redrive policy) and delivers', async () => {
    const driver = await sqs().create(sqsUrl('queue'), { credentials: EMULATOR_CREDENTIALS }, { logger });
    const t = topic('mrainf');
    await expectUnlimitedDriverDelivers(driver, t, {
      deliveryTimeoutMs: 20_000,
      options: { waitTimeSec: 1 },
      subscribed: async () => expect(await redrivePolicy('queue', topicQueueName(t))).toBeUndefined(),
    });
  }, 60_000);

  it('a message failing more than 20 times with maxAttempts 25 is dead-lettered at attempt 25 (queue mode)', async () => {
    const c = await client('queue');
    const t = topic('mra25');
    const { attempts, dead } = await subscribeAlwaysFailing(c, t, 25, { waitTimeSec: 1 });
    expect(await redrivePolicy('queue', topicQueueName(t))).toEqual({ maxReceiveCount: 27 });
    await c.publish(t, { n: 1 });
    await waitFor('the dead letter', () => dead.length >= 1, { timeoutMs: 120_000 });
    expect(attempts).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(dead[0]!['x-mqkit-attempts']).toBe('25');
  }, 180_000);

  it('a queue declared before with a lower redrive limit gets one above maxAttempts (with a warning)', async () => {
    const t = topic('mraold');
    const dlq = await raw.queue.send(new CreateQueueCommand({ QueueName: topicQueueName(`${t}-dlq`) }));
    const arn = (await raw.queue.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl!, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
    await raw.queue.send(
      new CreateQueueCommand({ QueueName: topicQueueName(t), Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: 3 }) } }),
    );
    const c = await client('queue');
    const before = warnings.length;
    await c.subscribe(t, { group: uniqueGroup('g'), retry: { maxAttempts: 25 }, handler: () => {} });
    expect(await redrivePolicy('queue', topicQueueName(t))).toEqual({ maxReceiveCount: 27 });
    expect(warnings.slice(before).some((w) => /redrive policy/.test(w.msg ?? ''))).toBe(true);
  }, 60_000);

  it('maxReceiveCount at or below maxAttempts, or a policy AWS refuses, is CONFIG (not INVALID_MESSAGE)', async () => {
    const c = await client('queue');
    const low = await c.subscribe(topic('mralow'), { group: uniqueGroup('g'), retry: { maxAttempts: 25 }, options: { maxReceiveCount: 20 }, handler: () => {} }).catch((e: unknown) => e);
    expect(MqError.is(low, 'CONFIG')).toBe(true);
    expect((low as Error).message).toMatch(/maxReceiveCount/);
    // ElasticMQ cannot remove a redrive policy: a queue keeping one below maxAttempts is refused up front.
    const t = topic('mrakeep');
    const dlq = await raw.queue.send(new CreateQueueCommand({ QueueName: topicQueueName(`${t}-dlq`) }));
    const arn = (await raw.queue.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl!, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
    await raw.queue.send(
      new CreateQueueCommand({ QueueName: topicQueueName(t), Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: 3 }) } }),
    );
    const kept = await c.subscribe(t, { group: uniqueGroup('g'), retry: { maxAttempts: 1500 }, handler: () => {} }).catch((e: unknown) => e);
    expect(MqError.is(kept, 'CONFIG')).toBe(true);
    expect((kept as Error).message).toMatch(/redrive/);
  }, 60_000);
});

describe('defect 5: empty payloads', () => {
  for (const mode of ['queue', 'sns'] as const) {
    it(`${mode} mode: a 0-byte payload arrives as 0 bytes`, async () => {
      const c = await client(mode);
      const t = topic('empty');
      const got: Uint8Array[] = [];
      await c.subscribe(t, { group: uniqueGroup('g'), codec: bytesCodec, options: { waitTimeSec: 1 }, handler: (d) => void got.push(d.payload) });
      await c.publish(t, new Uint8Array(0), { codec: bytesCodec, headers: { kind: 'ping' } });
      await c.publish(t, new TextEncoder().encode('-'), { codec: bytesCodec });
      await waitFor('both', () => got.length >= 2, { timeoutMs: 20_000 });
      expect(got.map((b) => b.byteLength).sort()).toEqual([0, 1]);
    }, 60_000);
  }
});

describe('defect 12: a raw producer forging the mqkit attribute', () => {
  const forged = (meta: Record<string, unknown>): Record<string, { DataType: string; StringValue: string }> => ({
    [META_ATTRIBUTE]: { DataType: 'String', StringValue: JSON.stringify({ v: 1, id: `forged-${Math.random()}`, ts: Date.now(), h: {}, ...meta }) },
  });

  it('forged prior attempts do not skip retries, a forged far due time does not park, a forged empty marker does not drop the body', async () => {
    const c = await client('queue');
    const t = topic('forge');
    const seen = await subscribeForgedTargets(c, t, { waitTimeSec: 1 });
    const url = await queueUrl('queue', topicQueueName(t));
    await raw.queue.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'attempts', MessageAttributes: forged({ a: 1000 }) }));
    await raw.queue.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'parked', MessageAttributes: forged({ due: Date.now() + 365 * 24 * 3600_000 }) }));
    await raw.queue.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'not empty', MessageAttributes: forged({ e: 'empty' }) }));
    await waitFor('all three handled, the forged-attempts one three times', () => seen.length >= 5, { timeoutMs: 30_000 });
    expect(attemptsOf(seen, 'attempts')).toEqual([1, 2, 3]);
    expect(attemptsOf(seen, 'parked')).toEqual([1]);
    expect(attemptsOf(seen, 'not empty')).toEqual([1]);
  }, 60_000);
});

describe('defect 1: an always-nacking handler does not starve the event loop', () => {
  it('50 messages nacked without delay: a 100 ms timer keeps >= 90 % of its unloaded ticks over 3 s, close() returns in time', async () => {
    const c = await client('queue');
    const t = topic('nackloop');
    await expectNackLoopKeepsTimers(c, t, { maxAttempts: 100_000, running: 100, runningTimeoutMs: 30_000, closeWithinMs: 8000, options: { waitTimeSec: 1 } });
  }, 90_000);
});
