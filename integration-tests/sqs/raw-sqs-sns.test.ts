/**
 * Raw AWS SDK v3 against the emulators: SQS semantics on ElasticMQ (`endpoint`), SNS → SQS fan-out
 * on moto (`snsEndpoint`; SNS delivers only to queues of the same emulator, so both clients point
 * there, and moto's queues stay tiny because it is slow).
 */
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  type QueueAttributeName,
  ReceiveMessageCommand,
  type ReceiveMessageCommandInput,
  SQSClient,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import {
  CreateTopicCommand,
  DeleteTopicCommand,
  GetSubscriptionAttributesCommand,
  PublishCommand,
  SNSClient,
  SubscribeCommand,
} from '@aws-sdk/client-sns';
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { awsClientConfig, requireBroker } from '../src/endpoints.ts';
import { uniqueName } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';

const e = requireBroker('sqs');
const sqs = new SQSClient({ ...awsClientConfig(e.endpoint, e.region), maxAttempts: 2 });
const motoSqs = new SQSClient({ ...awsClientConfig(e.snsEndpoint, e.region), maxAttempts: 2 });
const sns = new SNSClient({ ...awsClientConfig(e.snsEndpoint, e.region), maxAttempts: 2 });

const created: Array<{ client: SQSClient; url: string }> = [];
const topics: string[] = [];

async function createQueue(client: SQSClient, prefix: string, Attributes?: Record<string, string>): Promise<string> {
  const r = await client.send(new CreateQueueCommand({ QueueName: uniqueName(prefix), Attributes }));
  created.push({ client, url: r.QueueUrl! });
  return r.QueueUrl!;
}

async function attrs(client: SQSClient, url: string, names: QueueAttributeName[] = ['All']): Promise<Record<string, string>> {
  const r = await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: names }));
  return r.Attributes ?? {};
}

async function receive(client: SQSClient, url: string, o: Partial<ReceiveMessageCommandInput> = {}): Promise<Message[]> {
  const r = await client.send(
    new ReceiveMessageCommand({
      QueueUrl: url,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 1,
      MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      MessageAttributeNames: ['All'],
      ...o,
    }),
  );
  return r.Messages ?? [];
}

/** Receives (and deletes) until `want` messages or the time is up, plus one more look for extras. */
async function drain(client: SQSClient, url: string, want: number, timeoutMs = 10_000): Promise<Message[]> {
  const out: Message[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < want && Date.now() < deadline) {
    for (const m of await receive(client, url)) {
      out.push(m);
      await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }));
    }
  }
  for (const m of await receive(client, url)) out.push(m);
  return out;
}

const receiveCount = (m: Message | undefined) => m?.Attributes?.ApproximateReceiveCount;
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

afterAll(async () => {
  await Promise.allSettled(created.map(({ client, url }) => client.send(new DeleteQueueCommand({ QueueUrl: url }))));
  await Promise.allSettled(topics.map((t) => sns.send(new DeleteTopicCommand({ TopicArn: t }))));
  sqs.destroy();
  motoSqs.destroy();
  sns.destroy();
});

describe('SQS on ElasticMQ (client-sqs v3)', () => {
  it('send with attributes → receive → delete; the queue is then empty', async () => {
    const url = await createQueue(sqs, 'raw-sqs-basic');
    const body = 'hello ü €';
    const sent = await sqs.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: body,
        MessageAttributes: { 'mqkit-id': { DataType: 'String', StringValue: 'id-1' } },
      }),
    );
    expect(sent.MessageId).toBeTruthy();
    expect(sent.MD5OfMessageBody).toBe(md5(body));

    const [m, ...rest] = await receive(sqs, url, { WaitTimeSeconds: 5 });
    expect(rest).toHaveLength(0);
    expect(m?.Body).toBe(body);
    expect(m?.MessageId).toBe(sent.MessageId);
    expect(m?.MessageAttributes?.['mqkit-id']?.StringValue).toBe('id-1');
    expect(receiveCount(m)).toBe('1');
    expect((await attrs(sqs, url)).ApproximateNumberOfMessagesNotVisible).toBe('1');

    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m!.ReceiptHandle! }));
    const a = await attrs(sqs, url);
    expect(a.ApproximateNumberOfMessages).toBe('0');
    expect(a.ApproximateNumberOfMessagesNotVisible).toBe('0');
  });

  it('batch send reports per-entry failures; batch delete empties the queue', async () => {
    const url = await createQueue(sqs, 'raw-sqs-batch');
    const entries = Array.from({ length: 9 }, (_, i) => ({ Id: `e${i}`, MessageBody: `m${i}` }));
    const r = await sqs.send(
      new SendMessageBatchCommand({ QueueUrl: url, Entries: [...entries, { Id: 'bad', MessageBody: 'late', DelaySeconds: 901 }] }),
    );
    expect((r.Successful ?? []).map((s) => s.Id).sort()).toEqual(entries.map((x) => x.Id).sort());
    expect((r.Failed ?? []).map((f) => f.Id)).toEqual(['bad']);

    const got: Message[] = [];
    await waitFor('9 messages', async () => {
      got.push(...(await receive(sqs, url)));
      return got.length >= 9;
    });
    expect(got.map((m) => m.Body).sort()).toEqual(entries.map((x) => x.MessageBody).sort());
    const del = await sqs.send(
      new DeleteMessageBatchCommand({ QueueUrl: url, Entries: got.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle! })) }),
    );
    expect(del.Failed ?? []).toEqual([]);
    expect(del.Successful).toHaveLength(9);
    const a = await attrs(sqs, url);
    expect([a.ApproximateNumberOfMessages, a.ApproximateNumberOfMessagesNotVisible]).toEqual(['0', '0']);
  });

  it('ChangeMessageVisibility extends the lease past the queue timeout, and 0 releases it at once', async () => {
    const url = await createQueue(sqs, 'raw-sqs-vis', { VisibilityTimeout: '1' });
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'lease' }));
    const [m] = await receive(sqs, url, { WaitTimeSeconds: 5 });
    expect(m?.Body).toBe('lease');
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m!.ReceiptHandle!, VisibilityTimeout: 10 }));
    await sleep(2_000); // past the queue's 1 s timeout
    expect(await receive(sqs, url, { WaitTimeSeconds: 0 })).toHaveLength(0);

    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m!.ReceiptHandle!, VisibilityTimeout: 0 }));
    const [again] = await receive(sqs, url, { WaitTimeSeconds: 2 });
    expect(again?.Body).toBe('lease');
    expect(receiveCount(again)).toBe('2');
    expect(again?.ReceiptHandle).not.toBe(m!.ReceiptHandle);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: again!.ReceiptHandle! }));
  });

  it('redrive: a message received maxReceiveCount (2) times without delete moves to the DLQ', async () => {
    const dlq = await createQueue(sqs, 'raw-sqs-dlq');
    const dlqArn = (await attrs(sqs, dlq, ['QueueArn'])).QueueArn!;
    expect(dlqArn).toMatch(/^arn:aws:sqs:/);
    const url = await createQueue(sqs, 'raw-sqs-src', {
      VisibilityTimeout: '1',
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: '2' }),
    });
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'poison' }));

    const counts: string[] = [];
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const got = await receive(sqs, url, { WaitTimeSeconds: 2 });
      if (got.length === 0) break; // moved away (or gone)
      counts.push(receiveCount(got[0])!);
      await sleep(1_100); // let the visibility timeout lapse without deleting
    }
    expect(counts).toEqual(['1', '2']);
    const dead = await drain(sqs, dlq, 1);
    expect(dead.map((m) => m.Body)).toEqual(['poison']);
  });
});

describe('SNS → SQS fan-out on moto (client-sns v3)', () => {
  it('one topic, two queues: raw delivery keeps body and attributes, the filter policy keeps only matching messages', async () => {
    const topicArn = (await sns.send(new CreateTopicCommand({ Name: uniqueName('raw-sns') }))).TopicArn!;
    topics.push(topicArn);
    const red = await createQueue(motoSqs, 'raw-sns-red');
    const all = await createQueue(motoSqs, 'raw-sns-all');
    const subscribe = async (url: string, attributes: Record<string, string>) => {
      const arn = (await attrs(motoSqs, url, ['QueueArn'])).QueueArn!;
      const sub = await sns.send(
        new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: arn, Attributes: attributes, ReturnSubscriptionArn: true }),
      );
      return sub.SubscriptionArn!;
    };
    const redSub = await subscribe(red, { RawMessageDelivery: 'true', FilterPolicy: JSON.stringify({ color: ['red'] }) });
    await subscribe(all, { RawMessageDelivery: 'true' });
    const subAttrs = (await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: redSub }))).Attributes ?? {};
    expect(subAttrs.RawMessageDelivery).toBe('true');
    expect(JSON.parse(subAttrs.FilterPolicy ?? '{}')).toEqual({ color: ['red'] });

    const publish = (Message: string, color: string) =>
      sns.send(new PublishCommand({ TopicArn: topicArn, Message, MessageAttributes: { color: { DataType: 'String', StringValue: color } } }));
    await publish('{"order":1}', 'red');
    await publish('{"order":2}', 'blue');

    const r = await drain(motoSqs, red, 1);
    const a = await drain(motoSqs, all, 2);
    expect(r.map((m) => m.Body)).toEqual(['{"order":1}']); // raw: the body itself, no SNS JSON envelope
    expect(r[0]?.MessageAttributes?.color?.StringValue).toBe('red');
    expect(a.map((m) => m.Body).sort()).toEqual(['{"order":1}', '{"order":2}']);
  });
});
