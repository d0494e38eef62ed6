/**
 * Shared set-up of the @mqkit/sqs suites: clients for the two emulators.
 * - ElasticMQ (`endpoint`): SQS only, fast: queue mode (`sns=false`).
 * - moto (`snsEndpoint`): SNS plus its own SQS, slow (~150 sends/s): SNS fan-out mode. SNS
 *   delivers only to queues of the same emulator, so SQS and SNS both point at moto there.
 */
import { connect, type Client, type ConnectOptions } from '@mqkit/core';
import { sqs } from '@mqkit/sqs';
import { awsClientConfig, requireBroker } from '../src/endpoints.ts';

/** Dummy credentials the emulators accept (never real ones). */
export const EMULATOR_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' } as const;

export function sqsEndpoints(): { endpoint: string; snsEndpoint: string; region: string } {
  return requireBroker('sqs');
}

/** `sqs://` URL for queue mode on ElasticMQ, or SNS mode on moto. */
export function sqsUrl(mode: 'queue' | 'sns', extra: Record<string, string> = {}): string {
  const e = sqsEndpoints();
  const params = new URLSearchParams({
    region: e.region,
    endpoint: mode === 'queue' ? e.endpoint : e.snsEndpoint,
    sns: mode === 'sns' ? 'true' : 'false',
    ...extra,
  });
  return `sqs://?${params.toString()}`;
}

export function connectSqs(mode: 'queue' | 'sns', options: ConnectOptions = {}, extra: Record<string, string> = {}): Promise<Client> {
  return connect(sqsUrl(mode, extra), { ...options, adapters: [sqs()], options: { credentials: EMULATOR_CREDENTIALS, ...options.options } });
}

/** Raw AWS SDK settings for the same emulator. */
export function rawConfig(mode: 'queue' | 'sns') {
  const e = sqsEndpoints();
  return { ...awsClientConfig(mode === 'queue' ? e.endpoint : e.snsEndpoint, e.region), maxAttempts: 2 };
}

/**
 * Deletes the ElasticMQ queues behind the given mqkit topics and their derived dead-letter topics
 * (`-dlq`, `-dlq-dlq`), best effort: the shared emulator persists queues, so suites clean up.
 */
export async function deleteTopicQueues(topics: readonly string[]): Promise<void> {
  const { SQSClient, GetQueueUrlCommand, DeleteQueueCommand } = await import('@aws-sdk/client-sqs');
  const { topicQueueName } = await import('@mqkit/sqs');
  const client = new SQSClient(rawConfig('queue'));
  const names = topics.flatMap((t) => [t, `${t}-dlq`, `${t}-dlq-dlq`].map(topicQueueName));
  await Promise.allSettled(
    names.map(async (QueueName) => {
      const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName }));
      if (QueueUrl) await client.send(new DeleteQueueCommand({ QueueUrl }));
    }),
  );
  client.destroy();
}
