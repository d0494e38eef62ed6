/**
 * Queues mqkit creates take SQS's 1 MiB message limit (August 2025; a queue's default was 256 KiB
 * before), so the adapter's 1 MiB capability in queue mode holds on the queues it declares.
 * - ElasticMQ accepts the attribute (it neither reports nor enforces it: its own limit is 1 MiB),
 *   so there a near-1 MiB message round-trips through a queue mqkit created;
 * - moto keeps the attribute (and enforces it on SendMessage), and refuses CreateQueue for an
 *   existing queue with another value (QueueNameExists, as AWS does): there a queue made earlier
 *   with 256 KiB is taken over and raised to 1 MiB.
 */
import { CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand, GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { bytesCodec, type Client } from '@mqkit/core';
import { topicQueueName } from '@mqkit/sqs';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../src/names.ts';
import { connectSqs, deleteTopicQueues, rawConfig, sqsEndpoints } from './harness.ts';

const clients: Client[] = [];
const topics: string[] = [];
const moto = new SQSClient(rawConfig('sns'));
const motoQueues: string[] = [];

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close({ timeoutMs: 5_000 })));
  await deleteTopicQueues(topics);
  await Promise.allSettled(motoQueues.map((QueueUrl) => moto.send(new DeleteQueueCommand({ QueueUrl }))));
  moto.destroy();
});

/** Publishes `payload` on `topic` and resolves with the payload the consumer gets. */
async function roundTrip(mq: Client, topic: string, payload: Uint8Array): Promise<Uint8Array> {
  const got = new Promise<Uint8Array>((resolve) => {
    void mq.subscribe(topic, { group: 'g', codec: bytesCodec, handler: async (m) => resolve(m.payload) });
  });
  await mq.publish(topic, payload, { codec: bytesCodec });
  return got;
}

describe('sqs: MaximumMessageSize of the queues mqkit declares', () => {
  it('ElasticMQ: a payload 1 KiB under 1 MiB round-trips through a queue mqkit created', async () => {
    const mq = await connectSqs('queue');
    clients.push(mq);
    expect(mq.capabilities.maxMessageBytes).toBe(1024 * 1024);
    const topic = uniqueName('maxsize');
    topics.push(topic);
    const payload = randomBytes(1024 * 1024 - 1024);
    const got = await roundTrip(mq, topic, payload);
    expect(Buffer.from(got).equals(payload)).toBe(true);
  });

  it('moto: a new queue gets 1 MiB; one made before with 256 KiB is raised to 1 MiB, then takes a 600 KiB message', async () => {
    const endpoint = sqsEndpoints().snsEndpoint;
    const oldTopic = uniqueName('maxsize-old');
    const oldQueue = topicQueueName(oldTopic);
    const made = await moto.send(new CreateQueueCommand({ QueueName: oldQueue, Attributes: { MaximumMessageSize: '262144' } }));
    motoQueues.push(made.QueueUrl!);
    // Control: the emulator holds the queue to the smaller limit (on SendMessage; its
    // SendMessageBatch, which mqkit uses, does not check it, hence the attribute read below).
    await expect(moto.send(new SendMessageCommand({ QueueUrl: made.QueueUrl!, MessageBody: 'x'.repeat(300_000) }))).rejects.toThrow();

    const mq = await connectSqs('queue', {}, { endpoint });
    clients.push(mq);
    const payload = randomBytes(600 * 1024);
    const got = await roundTrip(mq, oldTopic, payload);
    expect(Buffer.from(got).equals(payload)).toBe(true);
    const size = async (url: string) =>
      (await moto.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['MaximumMessageSize'] }))).Attributes?.MaximumMessageSize;
    expect(await size(made.QueueUrl!)).toBe('1048576');

    const newTopic = uniqueName('maxsize-new');
    await mq.publish(newTopic, { small: true });
    const newUrl = (await moto.send(new GetQueueUrlCommand({ QueueName: topicQueueName(newTopic) }))).QueueUrl!;
    motoQueues.push(newUrl);
    expect(await size(newUrl)).toBe('1048576');
  });
});
