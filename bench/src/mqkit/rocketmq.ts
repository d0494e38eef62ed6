/**
 * mqkit rows for RocketMQ, beside the raw rocketmq-client-nodejs rows of the same run:
 * client.publish() with 64 calls in flight (one gRPC send per message, as the raw rows) vs the raw
 * row that sends the same key and properties an mqkit message carries; subscribe() with ack after
 * each handler (concurrency 128: four receive(32) calls open, acks batched per turn) vs the raw
 * SimpleConsumer loop of four pollers × receive(32) + ack each.
 */
import { bytesCodec as bytes, connect, type Client, type Subscription } from '@mqkit/core';
import { rocketmq } from '@mqkit/rocketmq';
import { createTopics } from '../raw/rocketmq.ts';
import { type BenchContext, defineScenario, now, pool } from '../types.ts';

type Ctx = BenchContext<'rocketmq'>;

const IN_FLIGHT = 64;

function url(ctx: Ctx): string {
  return `rocketmq://${ctx.endpoint.endpoints.split(';').join(',')}`;
}

async function client(ctx: Ctx): Promise<Client> {
  return connect(url(ctx), { adapters: [rocketmq()], options: { invisibleDurationMs: 15_000, awaitDurationMs: 5_000 } });
}

interface PubState {
  client: Client;
  topic: string;
}

interface ConsumeState extends PubState {
  subscription?: Subscription;
}

export const mqkitRocketmqScenarios = [
  defineScenario<'rocketmq', PubState>({
    broker: 'rocketmq',
    name: 'mqkit publish 64 in flight',
    kind: 'publish',
    client: 'mqkit',
    description: `${IN_FLIGHT} client.publish() calls in flight (reliable send, NORMAL topic)`,
    // Like with like: the raw row that carries the same key and properties per message.
    baseline: 'rocketmq-client publish 64 in flight, mqkit properties',
    async setup(ctx) {
      const c = await client(ctx);
      const topic = ctx.shared.get('pubTopic') as string;
      await c.publish(topic, ctx.payload, { codec: bytes });
      return { client: c, topic };
    },
    async run(ctx, s) {
      const t = now();
      await pool(ctx.n, IN_FLIGHT, () => s.client.publish(s.topic, ctx.payload, { codec: bytes }));
      return { count: ctx.n, ms: now() - t };
    },
    teardown: async (_ctx, s) => s.client.close(),
  }),
  defineScenario<'rocketmq', ConsumeState>({
    broker: 'rocketmq',
    name: 'mqkit consume',
    kind: 'consume',
    client: 'mqkit',
    description: 'subscribe(), concurrency 128 (4 receive(32) calls open), ack after each handler (fresh topic per rep, pre-filled)',
    baseline: 'rocketmq-client consume',
    async setup(ctx) {
      const topic = ctx.name('bench-mqkit-rmq-c');
      await createTopics([`${topic}:NORMAL`], ctx.endpoint.endpoints);
      const c = await client(ctx);
      await pool(ctx.n, IN_FLIGHT, () => c.publish(topic, ctx.payload, { codec: bytes }));
      return { client: c, topic };
    },
    async run(ctx, s) {
      let got = 0;
      let done: () => void = () => {};
      const finished = new Promise<void>((resolve) => {
        done = resolve;
      });
      const t0 = now();
      let t1 = 0;
      s.subscription = await s.client.subscribe(s.topic, {
        group: ctx.name('bench-mqkit-rmq-g'),
        concurrency: 128,
        codec: bytes,
        handler: () => {
          got += 1;
          if (got === ctx.n) {
            t1 = now();
            done();
          }
        },
      });
      // Like the raw row, whose SimpleConsumer starts up in setup: the clock starts once the
      // group's consumer is up. No message can have been handled yet (the first receive answers
      // in a later event-loop turn); if one had, the clock would include the startup.
      const t = got === 0 ? now() : t0;
      if (process.env.MQKIT_BENCH_DEBUG) ctx.log(`mqkit consume: subscribe() took ${(t - t0).toFixed(0)} ms`);
      const timeout = setTimeout(done, 180_000);
      await finished;
      clearTimeout(timeout);
      if (got < ctx.n) throw new Error(`consumed only ${got}/${ctx.n} in 180 s`);
      return { count: got, ms: t1 - t };
    },
    async teardown(_ctx, s) {
      await s.client.close();
    },
  }),
];

