import { CreateQueueCommand, GetQueueUrlCommand, QueueNameExists, SetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { SQS_MAX_BYTES } from './options.ts';
import { Topology } from './topology.ts';

type Sent = { name: string; input: Record<string, unknown> };

/** An SQSClient stand-in that records commands and answers them with `answer`. */
function fakeSqs(answer: (command: Sent) => unknown): { client: SQSClient; sent: Sent[] } {
  const sent: Sent[] = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const entry = { name: command.constructor.name, input: command.input };
      sent.push(entry);
      const out = answer(entry);
      if (out instanceof Error) throw out;
      return out;
    },
  } as unknown as SQSClient;
  return { client, sent };
}

const settings = { declare: true, region: 'us-east-1', requestTimeoutMs: 1000 };
const url = (name: string) => `http://sqs.local/000000000000/${name}`;

describe('Topology.queueUrl when declaring', () => {
  it('creates queues with the 1 MiB MaximumMessageSize, standard and FIFO', async () => {
    const { client, sent } = fakeSqs((c) => ({ QueueUrl: url(String(c.input.QueueName)) }));
    const topology = new Topology(client, undefined, settings);
    expect(SQS_MAX_BYTES).toBe(1_048_576);
    await expect(topology.queueUrl('orders', false)).resolves.toBe(url('orders'));
    await expect(topology.queueUrl('orders.fifo', true)).resolves.toBe(url('orders.fifo'));
    expect(sent).toEqual([
      { name: CreateQueueCommand.name, input: { QueueName: 'orders', Attributes: { MaximumMessageSize: '1048576' } } },
      { name: CreateQueueCommand.name, input: { QueueName: 'orders.fifo', Attributes: { MaximumMessageSize: '1048576', FifoQueue: 'true' } } },
    ]);
  });

  it('uses a queue that exists with a smaller limit (QueueNameExists) and raises its limit to 1 MiB', async () => {
    const { client, sent } = fakeSqs((c) => {
      if (c.name === CreateQueueCommand.name) return new QueueNameExists({ message: 'The specified queue already exists.', $metadata: {} });
      if (c.name === GetQueueUrlCommand.name) return { QueueUrl: url('orders') };
      return {};
    });
    const topology = new Topology(client, undefined, settings);
    await expect(topology.queueUrl('orders', false)).resolves.toBe(url('orders'));
    expect(sent.map((c) => c.name)).toEqual([CreateQueueCommand.name, GetQueueUrlCommand.name, SetQueueAttributesCommand.name]);
    expect(sent[2]?.input).toEqual({ QueueUrl: url('orders'), Attributes: { MaximumMessageSize: '1048576' } });
  });

  it('a refused limit raise is a CONFIG error naming the call, and is not cached', async () => {
    let refuse = true;
    const { client } = fakeSqs((c) => {
      if (c.name === CreateQueueCommand.name) return Object.assign(new Error('exists'), { name: 'QueueAlreadyExists' });
      if (c.name === GetQueueUrlCommand.name) return { QueueUrl: url('orders') };
      if (refuse) return Object.assign(new Error('no'), { name: 'InvalidAttributeValue' });
      return {};
    });
    const topology = new Topology(client, undefined, settings);
    await expect(topology.queueUrl('orders', false)).rejects.toMatchObject({ code: 'CONFIG', message: expect.stringContaining('SetQueueAttributes MaximumMessageSize orders') });
    refuse = false;
    await expect(topology.queueUrl('orders', false)).resolves.toBe(url('orders'));
  });

  it('other CreateQueue errors are classified as before', async () => {
    const { client, sent } = fakeSqs(() => Object.assign(new Error('denied'), { name: 'AccessDenied' }));
    const topology = new Topology(client, undefined, settings);
    await expect(topology.queueUrl('orders', false)).rejects.toMatchObject({ code: 'AUTH', message: expect.stringContaining('CreateQueue orders') });
    expect(sent).toHaveLength(1);
  });

  it('without declaring, only looks the queue up', async () => {
    const { client, sent } = fakeSqs(() => ({ QueueUrl: url('orders') }));
    const topology = new Topology(client, undefined, { ...settings, declare: false });
    await expect(topology.queueUrl('orders', false)).resolves.toBe(url('orders'));
    expect(sent).toEqual([{ name: GetQueueUrlCommand.name, input: { QueueName: 'orders' } }]);
  });
});
