/** Raw amqplib rows: confirmed persistent publish to a quorum queue, naive vs pipelined; prefetch + ack consume. */
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { type BenchContext, type BrokerSuite, deferred, defineScenario, now } from '../types.ts';

type Ctx = BenchContext<'rabbitmq'>;

export const rabbitmqSuite: BrokerSuite<'rabbitmq'> = { broker: 'rabbitmq', defaults: { n: 20_000, size: 1024 } };

const PREFETCH = 500;

interface State {
  conn: ChannelModel;
  ch: ConfirmChannel;
  queue: string;
}

async function setupQueue(ctx: Ctx): Promise<State> {
  const conn = await amqp.connect(ctx.endpoint.url);
  const ch = await conn.createConfirmChannel();
  const queue = ctx.name('bench-rabbit');
  await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  return { conn, ch, queue };
}

async function teardownQueue(_ctx: Ctx, s: State): Promise<void> {
  await s.ch.deleteQueue(s.queue).catch(() => {});
  await s.conn.close().catch(() => {});
}

const opts = { persistent: true, mandatory: true } as const;

function publishOne(s: State, payload: Buffer): Promise<void> {
  return new Promise((res, rej) => {
    s.ch.sendToQueue(s.queue, payload, opts, (err) => (err ? rej(err) : res()));
  });
}

/** Publishes n messages without waiting between them (respecting 'drain'), then awaits every confirm. */
export async function publishPipelined(s: State, n: number, payload: Buffer): Promise<void> {
  const confirms: Array<Promise<void>> = [];
  for (let i = 0; i < n; i++) {
    let ok = true;
    confirms.push(
      new Promise<void>((res, rej) => {
        ok = s.ch.sendToQueue(s.queue, payload, opts, (err) => (err ? rej(err) : res()));
      }),
    );
    if (!ok) await new Promise<void>((r) => s.ch.once('drain', () => r()));
  }
  await Promise.all(confirms);
}

export const rabbitmqScenarios = [
  defineScenario<'rabbitmq', State>({
    broker: 'rabbitmq',
    name: 'amqplib publish naive',
    kind: 'publish',
    client: 'amqplib',
    description: 'confirm channel, persistent + mandatory, await each confirm (quorum queue)',
    setup: setupQueue,
    async run(ctx, s) {
      const t = now();
      for (let i = 0; i < ctx.n; i++) await publishOne(s, ctx.payload);
      return { count: ctx.n, ms: now() - t };
    },
    teardown: teardownQueue,
  }),
  defineScenario<'rabbitmq', State>({
    broker: 'rabbitmq',
    name: 'amqplib publish pipelined',
    kind: 'publish',
    client: 'amqplib',
    description: 'confirm channel, persistent + mandatory, publish all (honouring drain), then await all confirms',
    baseline: 'amqplib publish naive',
    setup: setupQueue,
    async run(ctx, s) {
      const t = now();
      await publishPipelined(s, ctx.n, ctx.payload);
      return { count: ctx.n, ms: now() - t };
    },
    teardown: teardownQueue,
  }),
  defineScenario<'rabbitmq', State>({
    broker: 'rabbitmq',
    name: 'amqplib consume prefetch+ack',
    kind: 'consume',
    client: 'amqplib',
    description: `manual ack of each message, prefetch ${PREFETCH}`,
    async setup(ctx) {
      const s = await setupQueue(ctx);
      await publishPipelined(s, ctx.n, ctx.payload);
      return s;
    },
    async run(ctx, s) {
      const ch = await s.conn.createChannel();
      await ch.prefetch(PREFETCH);
      let got = 0;
      const done = deferred();
      const timer = setTimeout(() => done.reject(new Error(`consumed only ${got}/${ctx.n} in 120 s`)), 120_000);
      ch.on('error', done.reject);
      const t = now();
      await ch.consume(
        s.queue,
        (m) => {
          if (!m) return done.reject(new Error('consumer cancelled by the server'));
          ch.ack(m);
          if (++got === ctx.n) done.resolve();
        },
        { noAck: false },
      );
      try {
        await done.promise;
      } finally {
        clearTimeout(timer);
      }
      const ms = now() - t;
      await ch.close();
      // every ack reached the broker: nothing left, ready or unacked. A quorum queue updates its
      // count a moment after the acks, so poll briefly before calling it a failure.
      let left = -1;
      for (let i = 0; i < 50 && left !== 0; i += 1) {
        if (i > 0) await new Promise((r) => setTimeout(r, 100));
        left = (await s.ch.checkQueue(s.queue)).messageCount;
      }
      if (left !== 0) throw new Error(`${left} messages left in ${s.queue} after consuming`);
      return { count: got, ms };
    },
    teardown: teardownQueue,
  }),
];
