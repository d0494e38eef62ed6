/**
 * Raw amqplib rows: confirmed persistent publish to a quorum queue, naive vs pipelined; prefetch +
 * ack consume. The `(mqkit topology)` rows do the same over what mqkit declares and sends (durable
 * topic exchange → quorum group queue with delivery limit and dead-letter exchange; messageId,
 * timestamp, contentType and an `x-mqkit-timestamp` header on every message), so that the mqkit rows are
 * compared with a raw client paying the same broker-side cost.
 */
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel, Options } from 'amqplib';
import { type BenchContext, type BrokerSuite, deferred, defineScenario, now } from '../types.ts';

type Ctx = BenchContext<'rabbitmq'>;

export const rabbitmqSuite: BrokerSuite<'rabbitmq'> = { broker: 'rabbitmq', defaults: { n: 20_000, size: 1024 } };

const PREFETCH = 500;

interface State {
  conn: ChannelModel;
  ch: ConfirmChannel;
  queue: string;
  /** Set for the mqkit-topology rows: publishes go to this topic exchange (routing key ''). */
  exchange?: string;
}

async function setupQueue(ctx: Ctx): Promise<State> {
  const conn = await amqp.connect(ctx.endpoint.url);
  const ch = await conn.createConfirmChannel();
  const queue = ctx.name('bench-rabbit');
  await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  return { conn, ch, queue };
}

/**
 * What mqkit declares for `declareGroup(topic, group)` with default options: a durable topic
 * exchange, a dead-letter exchange, and the group's quorum queue bound with `#`.
 */
async function setupMqkitTopology(ctx: Ctx): Promise<State> {
  const conn = await amqp.connect(ctx.endpoint.url);
  const ch = await conn.createConfirmChannel();
  const exchange = ctx.name('bench-rabbit-topo');
  const queue = `${exchange}.bench`;
  await ch.assertExchange(exchange, 'topic', { durable: true });
  await ch.assertExchange(`${exchange}-dlq`, 'topic', { durable: true });
  await ch.assertQueue(queue, {
    durable: true,
    arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 20, 'x-dead-letter-exchange': `${exchange}-dlq` },
  });
  await ch.bindQueue(queue, exchange, '#');
  return { conn, ch, queue, exchange };
}

async function teardownQueue(_ctx: Ctx, s: State): Promise<void> {
  await s.ch.deleteQueue(s.queue).catch(() => {});
  if (s.exchange) {
    await s.ch.deleteExchange(s.exchange).catch(() => {});
    await s.ch.deleteExchange(`${s.exchange}-dlq`).catch(() => {});
  }
  await s.conn.close().catch(() => {});
}

const opts = { persistent: true, mandatory: true } as const;

function publishOne(s: State, payload: Buffer): Promise<void> {
  return new Promise((res, rej) => {
    s.ch.sendToQueue(s.queue, payload, opts, (err) => (err ? rej(err) : res()));
  });
}

/** The properties mqkit puts on every message (as a raw `get` shows them), fresh per message. */
function mqkitLikeOptions(): Options.Publish {
  const ms = Date.now();
  return {
    persistent: true,
    mandatory: true,
    messageId: randomUUID(),
    timestamp: Math.floor(ms / 1000),
    contentType: 'application/octet-stream',
    headers: { 'x-mqkit-timestamp': ms },
  };
}

/**
 * Publishes n messages without waiting between them (respecting 'drain'), then awaits every
 * confirm. To the queue directly, or, for the mqkit-topology state, through its exchange with
 * mqkit's message properties.
 */
export async function publishPipelined(s: State, n: number, payload: Buffer): Promise<void> {
  const confirms: Array<Promise<void>> = [];
  const { exchange } = s;
  for (let i = 0; i < n; i++) {
    let ok = true;
    confirms.push(
      new Promise<void>((res, rej) => {
        const cb = (err: Error | null): void => (err ? rej(err) : res());
        ok = exchange === undefined ? s.ch.sendToQueue(s.queue, payload, opts, cb) : s.ch.publish(exchange, '', payload, mqkitLikeOptions(), cb);
      }),
    );
    if (!ok) await new Promise<void>((r) => s.ch.once('drain', () => r()));
  }
  await Promise.all(confirms);
}

/** Consumes all n messages on a fresh channel (prefetch, ack each); checks that none are left. */
async function consumeAll(ctx: Ctx, s: State): Promise<{ count: number; ms: number }> {
  const ch = await s.conn.createChannel();
  await ch.prefetch(PREFETCH);
  let got = 0;
  const done = deferred();
  const timer = setTimeout(() => done.reject(new Error(`consumed only ${got}/${ctx.n} in 120 s`)), 120_000);
  ch.on('error', done.reject);
  const t = now();
  const { consumerTag } = await ch.consume(
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
  // Cancel before closing (untimed): a quorum queue can otherwise return messages whose acks
  // were written just before the channel closed (seen: 30–300 of 50,000 left in the queue).
  await ch.cancel(consumerTag);
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
}

/** Publishes n messages pipelined over the topology `setup` builds. */
function pipelinedRow(name: string, description: string, baseline: string, setup: (ctx: Ctx) => Promise<State>) {
  return defineScenario<'rabbitmq', State>({
    broker: 'rabbitmq',
    name,
    kind: 'publish',
    client: 'amqplib',
    description,
    baseline,
    setup,
    async run(ctx, s) {
      const t = now();
      await publishPipelined(s, ctx.n, ctx.payload);
      return { count: ctx.n, ms: now() - t };
    },
    teardown: teardownQueue,
  });
}

/** Consumes n messages pre-filled (pipelined) into the topology `setup` builds. */
function consumeRow(name: string, description: string, baseline: string | undefined, setup: (ctx: Ctx) => Promise<State>) {
  return defineScenario<'rabbitmq', State>({
    broker: 'rabbitmq',
    name,
    kind: 'consume',
    client: 'amqplib',
    description,
    ...(baseline === undefined ? {} : { baseline }),
    async setup(ctx) {
      const s = await setup(ctx);
      await publishPipelined(s, ctx.n, ctx.payload);
      return s;
    },
    run: consumeAll,
    teardown: teardownQueue,
  });
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
  pipelinedRow(
    'amqplib publish pipelined',
    'confirm channel, persistent + mandatory, publish all (honouring drain), then await all confirms',
    'amqplib publish naive',
    setupQueue,
  ),
  consumeRow('amqplib consume prefetch+ack', `manual ack of each message, prefetch ${PREFETCH}`, undefined, setupQueue),
  pipelinedRow(
    'amqplib publish pipelined (mqkit topology)',
    'as pipelined, but to a topic exchange bound to a quorum group queue (mqkit arguments), with messageId, timestamp, contentType, x-mqkit-timestamp',
    'amqplib publish pipelined',
    setupMqkitTopology,
  ),
  consumeRow(
    'amqplib consume prefetch+ack (mqkit topology)',
    `as consume prefetch+ack (prefetch ${PREFETCH}, ack each), from a quorum group queue (mqkit arguments) filled with mqkit-like messages`,
    'amqplib consume prefetch+ack',
    setupMqkitTopology,
  ),
];
