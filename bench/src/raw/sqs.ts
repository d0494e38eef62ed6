/** Raw @aws-sdk/client-sqs rows on ElasticMQ: SendMessage naive vs SendMessageBatch in flight; receive + DeleteMessageBatch. */
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { type BenchContext, type BrokerSuite, defineScenario, now, pool } from '../types.ts';

type Ctx = BenchContext<'sqs'>;

export const sqsSuite: BrokerSuite<'sqs'> = { broker: 'sqs', defaults: { n: 5_000, size: 1024 } };

const IN_FLIGHT = 16;
const POLLERS = 16;

interface State {
  sqs: SQSClient;
  url: string;
  body: string;
}

export function sqsClient(ctx: Ctx): SQSClient {
  return new SQSClient({
    endpoint: ctx.endpoint.endpoint,
    region: ctx.endpoint.region,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
}

async function setupQueue(ctx: Ctx): Promise<State> {
  const sqs = sqsClient(ctx);
  const url = (await sqs.send(new CreateQueueCommand({ QueueName: ctx.name('bench-sqs') }))).QueueUrl!;
  return { sqs, url, body: ctx.payload.toString('latin1').replace(/[^\x20-\x7e]/g, 'x') };
}

async function teardownQueue(_ctx: Ctx, s: State): Promise<void> {
  await s.sqs.send(new DeleteQueueCommand({ QueueUrl: s.url })).catch(() => {});
  s.sqs.destroy();
}

/** SendMessageBatch of 10, `inFlight` batches concurrently; failed entries are an error. */
export async function sendBatched(s: State, n: number, inFlight: number): Promise<void> {
  const batches = Math.ceil(n / 10);
  await pool(batches, inFlight, async (b) => {
    const Entries = [];
    for (let j = 0; j < 10 && b * 10 + j < n; j++) Entries.push({ Id: `e${j}`, MessageBody: s.body });
    const r = await s.sqs.send(new SendMessageBatchCommand({ QueueUrl: s.url, Entries }));
    if (r.Failed?.length) throw new Error(`${r.Failed.length} batch entries failed: ${r.Failed[0]!.Code} ${r.Failed[0]!.Message}`);
  });
}

export const sqsScenarios = [
  defineScenario<'sqs', State>({
    broker: 'sqs',
    name: 'client-sqs publish naive',
    kind: 'publish',
    client: 'client-sqs',
    description: 'await each SendMessage',
    setup: setupQueue,
    async run(ctx, s) {
      const t = now();
      for (let i = 0; i < ctx.n; i++) await s.sqs.send(new SendMessageCommand({ QueueUrl: s.url, MessageBody: s.body }));
      return { count: ctx.n, ms: now() - t };
    },
    teardown: teardownQueue,
  }),
  defineScenario<'sqs', State>({
    broker: 'sqs',
    name: 'client-sqs publish batched',
    kind: 'publish',
    client: 'client-sqs',
    description: `SendMessageBatch of 10, ${IN_FLIGHT} batches in flight, Failed[] checked`,
    baseline: 'client-sqs publish naive',
    setup: setupQueue,
    async run(ctx, s) {
      const t = now();
      await sendBatched(s, ctx.n, IN_FLIGHT);
      return { count: ctx.n, ms: now() - t };
    },
    teardown: teardownQueue,
  }),
  defineScenario<'sqs', State>({
    broker: 'sqs',
    name: 'client-sqs consume',
    kind: 'consume',
    client: 'client-sqs',
    description: `${POLLERS} pollers: ReceiveMessage(10, wait 1 s) + DeleteMessageBatch, Failed[] checked`,
    async setup(ctx) {
      const s = await setupQueue(ctx);
      await sendBatched(s, ctx.n, IN_FLIGHT);
      return s;
    },
    async run(ctx, s) {
      let got = 0;
      let t1 = 0;
      let empty = 0;
      const t = now();
      const poller = async () => {
        while (got < ctx.n) {
          const r = await s.sqs.send(new ReceiveMessageCommand({ QueueUrl: s.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
          const ms = r.Messages ?? [];
          if (!ms.length) {
            if (++empty > 200) throw new Error(`queue ran dry after ${got}/${ctx.n}`);
            continue;
          }
          const d = await s.sqs.send(
            new DeleteMessageBatchCommand({ QueueUrl: s.url, Entries: ms.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle! })) }),
          );
          if (d.Failed?.length) throw new Error(`${d.Failed.length} deletes failed: ${d.Failed[0]!.Code}`);
          got += ms.length;
          if (got >= ctx.n && !t1) t1 = now();
        }
      };
      await Promise.all(Array.from({ length: POLLERS }, poller));
      return { count: got, ms: t1 - t };
    },
    teardown: teardownQueue,
  }),
];
