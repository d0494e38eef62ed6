/**
 * mqkit rows for RabbitMQ, beside the raw amqplib rows of the same run:
 * - `mqkit publish`: client.publish() for all n messages at once (as the raw pipelined row
 *   publishes all, then awaits all confirms); core coalesces them into
 *   driver batches (≤ 1,000) that the adapter pipelines on one confirm channel (persistent,
 *   mandatory, topic exchange → one quorum group queue). The ratio is against
 *   `amqplib publish pipelined (mqkit topology)`: the same exchange, queue arguments and message
 *   properties, so both pay the same broker-side cost; `amqplib publish pipelined` (queue only,
 *   no properties) and `amqplib publish naive` stay in the table for reference.
 * - `mqkit consume`: subscribe() with concurrency 250 (prefetch 500, as the raw row), ack after
 *   the handler; timed until close() flushed the last ack; then (untimed) the queue must be
 *   empty, as the raw row checks. Ratio against
 *   `amqplib consume prefetch+ack (mqkit topology)` (same queue kind, mqkit-like messages).
 */
import { bytesCodec, connect } from '@mqkit/core';
import { rabbitmq, type RabbitmqNative } from '@mqkit/rabbitmq';
import { type BenchContext, defineScenario, now } from '../types.ts';
import type { MqkitState } from './state.ts';

type Ctx = BenchContext<'rabbitmq'>;

const CONCURRENCY = 250;
const GROUP = 'bench';

type State = MqkitState;

async function setup(ctx: Ctx): Promise<State> {
  const client = await connect(ctx.endpoint.url, { adapters: [rabbitmq()] });
  const topic = ctx.name('bench-mqkit-rabbit');
  // Topology outside the timed section: the group's quorum queue must exist or publishes are unroutable.
  await (client.native as RabbitmqNative).declareGroup(topic, GROUP);
  return { client, topic, body: new Uint8Array(ctx.payload) };
}

async function publishAll(s: State, n: number): Promise<void> {
  // All in flight at once, like the raw pipelined row (publish all, then await all confirms).
  await Promise.all(Array.from({ length: n }, () => s.client.publish(s.topic, s.body, { codec: bytesCodec })));
}

async function teardown(_ctx: Ctx, s: State): Promise<void> {
  await s.subscription?.close({ timeoutMs: 1_000 });
  const model = (s.client.native as RabbitmqNative).connection;
  if (model) {
    const ch = await model.createChannel().catch(() => undefined);
    if (ch) {
      await ch.deleteQueue(`${s.topic}.${GROUP}`).catch(() => {});
      await ch.deleteExchange(s.topic).catch(() => {});
      await ch.deleteQueue(`${s.topic}-dlq`).catch(() => {});
      await ch.deleteExchange(`${s.topic}-dlq`).catch(() => {});
      await ch.close().catch(() => {});
    }
  }
  await s.client.close({ timeoutMs: 1_000 });
}

/** Throws when `queue` still holds messages (polls: a quorum queue counts a moment late). */
async function expectDrained(s: State, queue: string): Promise<void> {
  const ch = await (s.client.native as RabbitmqNative).connection?.createChannel();
  if (!ch) throw new Error('no rabbitmq connection to check the queue with');
  try {
    let left = -1;
    for (let i = 0; i < 50 && left !== 0; i += 1) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      left = (await ch.checkQueue(queue)).messageCount;
    }
    if (left !== 0) throw new Error(`${left} messages left in ${queue} after consuming`);
  } finally {
    await ch.close().catch(() => {});
  }
}

export const mqkitRabbitmqScenarios = [
  defineScenario<'rabbitmq', State>({
    broker: 'rabbitmq',
    name: 'mqkit publish',
    kind: 'publish',
    client: 'mqkit',
    description: `client.publish() × n, all in flight (core batches → one pipelined confirm channel), persistent + mandatory`,
    baseline: 'amqplib publish pipelined (mqkit topology)',
    setup,
    async run(ctx, s) {
      const t = now();
      await publishAll(s, ctx.n);
      return { count: ctx.n, ms: now() - t };
    },
    teardown,
  }),
  defineScenario<'rabbitmq', State>({
    broker: 'rabbitmq',
    name: 'mqkit consume',
    kind: 'consume',
    client: 'mqkit',
    description: `subscribe(), concurrency ${CONCURRENCY} (prefetch ${2 * CONCURRENCY}), ack after the handler`,
    baseline: 'amqplib consume prefetch+ack (mqkit topology)',
    async setup(ctx) {
      const s = await setup(ctx);
      await publishAll(s, ctx.n);
      return s;
    },
    async run(ctx, s) {
      let got = 0;
      let done!: () => void;
      const finished = new Promise<void>((resolve) => (done = resolve));
      const t = now();
      s.subscription = await s.client.subscribe(s.topic, {
        group: GROUP,
        codec: bytesCodec,
        concurrency: CONCURRENCY,
        handler: () => {
          got += 1;
          if (got === ctx.n) done();
        },
      });
      await finished;
      // Until the last ack left: close() waits for running handlers and closes the channel.
      await s.subscription.close();
      const ms = now() - t;
      s.subscription = undefined;
      // Untimed: every ack (coalesced by the adapter) reached the broker, none was lost to the close.
      await expectDrained(s, `${s.topic}.${GROUP}`);
      return { count: got, ms };
    },
    teardown,
  }),
];
