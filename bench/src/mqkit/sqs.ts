/**
 * mqkit rows for SQS on ElasticMQ (queue mode, `sns=false`), beside the raw client-sqs rows of the
 * same run:
 * - `mqkit publish`: client.publish() with 160 calls in flight; core coalesces them into driver
 *   batches of 10 (SendMessageBatch), i.e. up to 16 batches in flight like the raw batched row.
 *   Compare with `client-sqs publish batched` (ratio printed) and `client-sqs publish naive`.
 * - `mqkit consume`: subscribe() with 160 handlers and the adapter's default 8 long-polling
 *   receive loops of 10, deletes coalesced into DeleteMessageBatch, vs the raw 16 pollers ×
 *   Receive(10) + DeleteMessageBatch; `mqkit consume 16 pollers` matches the raw row's 16 loops.
 *
 * Imports the workspace packages by path until bench/package.json lists @mqkit/core and @mqkit/sqs.
 */
import { bytesCodec, connect, type Client } from '@mqkit/core';
import { sqs } from '@mqkit/sqs';
import { CreateQueueCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type BenchContext, defineScenario, now, pool } from '../types.ts';
import type { MqkitState } from './state.ts';

type Ctx = BenchContext<'sqs'>;

const IN_FLIGHT = 160;

async function open(ctx: Ctx): Promise<Client> {
  const params = new URLSearchParams({ region: ctx.endpoint.region, endpoint: ctx.endpoint.endpoint, sns: 'false' });
  return connect(`sqs://?${params.toString()}`, { adapters: [sqs()], options: { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } } });
}

type State = MqkitState;

async function setup(ctx: Ctx): Promise<State> {
  const client = await open(ctx);
  const topic = ctx.name('bench-mqkit-sqs');
  const body = new Uint8Array(Buffer.from(ctx.payload.toString('latin1').replace(/[^\x20-\x7e]/g, 'x'), 'latin1'));
  // Declare the queue outside the timed section.
  await client.publish(topic, body, { codec: bytesCodec });
  return { client, topic, body };
}

async function publishAll(s: State, n: number): Promise<void> {
  await pool(n, IN_FLIGHT, async () => {
    await s.client.publish(s.topic, s.body, { codec: bytesCodec });
  });
}

async function teardown(_ctx: Ctx, s: State): Promise<void> {
  await s.subscription?.close({ timeoutMs: 1_000 });
  await s.client.close({ timeoutMs: 1_000 });
}

/** A consume row: subscribe() with the adapter's default receive loops, or `pollers` of them. */
function consumeRow(name: string, pollers: number | undefined) {
  return defineScenario<'sqs', State>({
    broker: 'sqs',
    name,
    kind: 'consume',
    client: 'mqkit',
    description: `subscribe(), concurrency ${IN_FLIGHT}, ${pollers ?? 'default (8)'} receive loops, ack after handler (coalesced DeleteMessageBatch)`,
    baseline: 'client-sqs consume',
    async setup(ctx) {
      const s = await setup(ctx);
      await publishAll(s, ctx.n - 1); // plus the declaring message: n in the queue
      return s;
    },
    async run(ctx, s) {
      let got = 0;
      let t1 = 0;
      let done!: () => void;
      const finished = new Promise<void>((resolve) => (done = resolve));
      const t = now();
      s.subscription = await s.client.subscribe(s.topic, {
        group: 'bench',
        codec: bytesCodec,
        concurrency: IN_FLIGHT,
        options: { waitTimeSec: 1, ...(pollers ? { pollers } : {}) },
        handler: () => {
          got += 1;
          if (got === ctx.n) {
            t1 = now();
            done();
          }
        },
      });
      await finished;
      // Count the time until the last ack was confirmed too: close() waits for it.
      await s.subscription.close();
      const t2 = now();
      return { count: got, ms: Math.max(t1, t2) - t };
    },
    teardown,
  });
}

/**
 * Raw reference rows carrying what mqkit carries: one String attribute of envelope metadata per
 * message (id, timestamp, headers as JSON, ~110 bytes) and receives asking for attributes. The
 * emulator stores and returns it and the SDK checks its MD5, so these show the cost of the
 * metadata itself, apart from mqkit's own.
 */
interface RawState {
  sqs: SQSClient;
  url: string;
  body: string;
}

function meta(i: number): string {
  return JSON.stringify({ v: 1, id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, ts: Date.now(), h: { 'content-type': 'application/octet-stream' } });
}

async function rawSetup(ctx: Ctx): Promise<RawState> {
  const sqs = new SQSClient({ endpoint: ctx.endpoint.endpoint, region: ctx.endpoint.region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const url = (await sqs.send(new CreateQueueCommand({ QueueName: ctx.name('bench-sqs-attr') }))).QueueUrl!;
  return { sqs, url, body: ctx.payload.toString('latin1').replace(/[^\x20-\x7e]/g, 'x') };
}

async function rawSendWithMeta(s: RawState, n: number): Promise<void> {
  await pool(Math.ceil(n / 10), 16, async (b) => {
    const Entries = [];
    for (let j = 0; j < 10 && b * 10 + j < n; j++) {
      Entries.push({ Id: `e${j}`, MessageBody: s.body, MessageAttributes: { mqkit: { DataType: 'String', StringValue: meta(b * 10 + j) } } });
    }
    const r = await s.sqs.send(new SendMessageBatchCommand({ QueueUrl: s.url, Entries }));
    if (r.Failed?.length) throw new Error(`${r.Failed.length} batch entries failed: ${r.Failed[0]!.Code}`);
  });
}

const rawWithMetaScenarios = [
  defineScenario<'sqs', RawState>({
    broker: 'sqs',
    name: 'client-sqs publish batched + meta attribute',
    kind: 'publish',
    client: 'client-sqs',
    description: 'SendMessageBatch of 10, 16 in flight, plus one ~110-byte String attribute per message (what mqkit sends)',
    baseline: 'client-sqs publish batched',
    setup: rawSetup,
    async run(ctx, s) {
      const t = now();
      await rawSendWithMeta(s, ctx.n);
      return { count: ctx.n, ms: now() - t };
    },
    async teardown(_ctx, s) {
      s.sqs.destroy();
    },
  }),
  defineScenario<'sqs', RawState>({
    broker: 'sqs',
    name: 'client-sqs consume + meta attribute',
    kind: 'consume',
    client: 'client-sqs',
    description: '16 pollers: ReceiveMessage(10, wait 1 s, all attributes) + DeleteMessageBatch, messages with the meta attribute',
    baseline: 'client-sqs consume',
    async setup(ctx) {
      const s = await rawSetup(ctx);
      await rawSendWithMeta(s, ctx.n);
      return s;
    },
    async run(ctx, s) {
      let got = 0;
      const t = now();
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (got < ctx.n) {
            const r = await s.sqs.send(
              new ReceiveMessageCommand({ QueueUrl: s.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['ApproximateReceiveCount'] }),
            );
            const ms = r.Messages ?? [];
            if (!ms.length) continue;
            const d = await s.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: s.url, Entries: ms.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle! })) }));
            if (d.Failed?.length) throw new Error(`${d.Failed.length} deletes failed`);
            got += ms.length;
          }
        }),
      );
      return { count: got, ms: now() - t };
    },
    async teardown(_ctx, s) {
      s.sqs.destroy();
    },
  }),
];

export const mqkitSqsScenarios = [
  ...rawWithMetaScenarios,
  defineScenario<'sqs', State>({
    broker: 'sqs',
    name: 'mqkit publish',
    kind: 'publish',
    client: 'mqkit',
    description: `client.publish(), ${IN_FLIGHT} in flight (core batches of 10 → SendMessageBatch)`,
    baseline: 'client-sqs publish batched',
    setup,
    async run(ctx, s) {
      const t = now();
      await publishAll(s, ctx.n);
      return { count: ctx.n, ms: now() - t };
    },
    teardown,
  }),
  consumeRow('mqkit consume', undefined),
  consumeRow('mqkit consume 16 pollers', 16),
];
