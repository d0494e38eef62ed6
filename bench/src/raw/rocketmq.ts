/** Raw rocketmq-client-nodejs 1.0.8 rows: send naive vs 64 in flight; SimpleConsumer receive(32) + ack. */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { type MessageView, Producer, SimpleConsumer } from 'rocketmq-client-nodejs';
import { type BenchContext, type BrokerSuite, defineScenario, now, pool, sleep } from '../types.ts';

type Ctx = BenchContext<'rocketmq'>;

const IN_FLIGHT = 64;
const RECEIVE_BATCH = 32;
const POLLERS = 4;
const REPO_ROOT = resolve(import.meta.dirname, '..', '..', '..');

export const quietLogger = { info() {}, warn() {}, error() {}, debug() {}, close() {} };

/**
 * RocketMQ 5 topics are typed and must exist before use. Fresh topics per run keep consume rows
 * honest (a new consumer group on a fresh topic starts at offset 0 and sees only this run's data)
 * and keep benchmark traffic out of the shared smoke topics.
 */
export async function createTopics(specs: string[], endpoints: string): Promise<void> {
  const custom = process.env.MQKIT_ROCKETMQ_TOPIC_CMD?.trim();
  const [cmd, ...pre] = custom ? custom.split(/\s+/) : ['bash', join(REPO_ROOT, 'scripts', 'brokers', 'brokers.sh'), 'rocketmq-topic'];
  try {
    await promisify(execFile)(cmd!, [...pre, ...specs], { cwd: REPO_ROOT, timeout: 180_000 });
  } catch (e) {
    const x = e as Error & { stderr?: string };
    throw new Error(`creating RocketMQ topics (${[cmd, ...pre].join(' ')}) failed: ${x.message}\n${x.stderr ?? ''}`, { cause: e });
  }
  for (const s of specs) await waitForRoute(s.split(':')[0]!, endpoints);
}

async function waitForRoute(topic: string, endpoints: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last = '';
  while (Date.now() < deadline) {
    const p = new Producer({ endpoints, namespace: '', topic, logger: quietLogger, maxAttempts: 1 });
    try {
      await p.startup();
      await p.shutdown().catch(() => {});
      return;
    } catch (e) {
      last = (e as Error).message;
      await p.shutdown().catch(() => {});
      await sleep(500);
    }
  }
  throw new Error(`RocketMQ topic ${topic} has no route: ${last}`);
}

export const rocketmqSuite: BrokerSuite<'rocketmq'> = {
  broker: 'rocketmq',
  // 20,000: a rep of the fast rows lasts a few seconds, long enough to see through the noise.
  defaults: { n: 20_000, size: 1024 },
  async before(ctx) {
    const pub = ctx.name('bench-rmq-pub');
    const consume = Array.from({ length: ctx.reps }, (_, i) => ctx.name(`bench-rmq-c${i}`));
    ctx.log(`creating RocketMQ topics ${[pub, ...consume].join(' ')}`);
    await createTopics([`${pub}:NORMAL`, ...consume.map((t) => `${t}:NORMAL`)], ctx.endpoint.endpoints);
    ctx.shared.set('pubTopic', pub);
    ctx.shared.set('consumeTopics', consume);
  },
};

interface PubState {
  producer: Producer;
  topic: string;
}

async function producerFor(ctx: Ctx, topic: string): Promise<Producer> {
  const producer = new Producer({ endpoints: ctx.endpoint.endpoints, namespace: '', topic, logger: quietLogger, maxAttempts: 3 });
  await producer.startup();
  await producer.send({ topic, tag: 'warmup', body: Buffer.from('x') });
  return producer;
}

async function pubSetup(ctx: Ctx): Promise<PubState> {
  const topic = ctx.shared.get('pubTopic') as string;
  return { producer: await producerFor(ctx, topic), topic };
}

const send = (s: PubState, ctx: Ctx) => s.producer.send({ topic: s.topic, tag: 'bench', body: ctx.payload });

/**
 * What an mqkit publish puts on the wire for the same payload (see @mqkit/rocketmq message-codec):
 * the message id as a RocketMQ key (indexed by the broker) and as a property, the producer
 * timestamp and content type as properties, no tag. Compare mqkit with this row, like with like.
 */
const sendLikeMqkit = (s: PubState, ctx: Ctx) => {
  const id = randomUUID();
  return s.producer.send({
    topic: s.topic,
    body: ctx.payload,
    keys: [id],
    properties: new Map([
      ['content-type', 'application/octet-stream'],
      ['x-mqkit-id', id],
      ['x-mqkit-timestamp', String(Date.now())],
    ]),
  });
};

/** A publish row keeping {@link IN_FLIGHT} `sendOne` calls open. */
function inFlightRow(name: string, description: string, baseline: string, sendOne: (s: PubState, ctx: Ctx) => Promise<unknown>) {
  return defineScenario<'rocketmq', PubState>({
    broker: 'rocketmq',
    name,
    kind: 'publish',
    client: 'rocketmq-client-nodejs',
    description,
    baseline,
    setup: pubSetup,
    async run(ctx, s) {
      const t = now();
      await pool(ctx.n, IN_FLIGHT, () => sendOne(s, ctx));
      return { count: ctx.n, ms: now() - t };
    },
    teardown: async (_ctx, s) => s.producer.shutdown(),
  });
}

interface ConsumeState extends PubState {
  consumer: SimpleConsumer;
}

export const rocketmqScenarios = [
  defineScenario<'rocketmq', PubState>({
    broker: 'rocketmq',
    name: 'rocketmq-client publish naive',
    kind: 'publish',
    client: 'rocketmq-client-nodejs',
    description: 'await each send() (NORMAL topic)',
    setup: pubSetup,
    async run(ctx, s) {
      const t = now();
      for (let i = 0; i < ctx.n; i++) await send(s, ctx);
      return { count: ctx.n, ms: now() - t };
    },
    teardown: async (_ctx, s) => s.producer.shutdown(),
  }),
  inFlightRow('rocketmq-client publish 64 in flight', `${IN_FLIGHT} send() calls in flight (NORMAL topic)`, 'rocketmq-client publish naive', send),
  inFlightRow(
    'rocketmq-client publish 64 in flight, mqkit properties',
    `${IN_FLIGHT} send() calls in flight, each with the key and properties an mqkit publish carries (NORMAL topic)`,
    'rocketmq-client publish 64 in flight',
    sendLikeMqkit,
  ),
  defineScenario<'rocketmq', ConsumeState>({
    broker: 'rocketmq',
    name: 'rocketmq-client consume',
    kind: 'consume',
    client: 'rocketmq-client-nodejs',
    description: `SimpleConsumer, ${POLLERS} pollers: receive(${RECEIVE_BATCH}) + ack each (fresh topic per rep)`,
    async setup(ctx) {
      const topic = (ctx.shared.get('consumeTopics') as string[])[ctx.rep]!;
      const producer = await producerFor(ctx, topic);
      const s = { producer, topic };
      await pool(ctx.n, IN_FLIGHT, () => send(s, ctx));
      const consumer = new SimpleConsumer({
        endpoints: ctx.endpoint.endpoints,
        namespace: '',
        consumerGroup: ctx.name('bench-rmq-group'),
        subscriptions: new Map([[topic, 'bench']]),
        awaitDuration: 5_000,
        logger: quietLogger,
      });
      await consumer.startup();
      return { ...s, consumer };
    },
    async run(ctx, s) {
      let got = 0;
      let t1 = 0;
      const deadline = Date.now() + 180_000;
      const t = now();
      const poller = async () => {
        while (got < ctx.n) {
          if (Date.now() > deadline) throw new Error(`consumed only ${got}/${ctx.n} in 180 s`);
          const ms: MessageView[] = await s.consumer.receive(RECEIVE_BATCH, 15_000);
          await Promise.all(ms.map((m) => s.consumer.ack(m)));
          got += ms.length;
          if (got >= ctx.n && !t1) t1 = now();
        }
      };
      await Promise.all(Array.from({ length: POLLERS }, poller));
      return { count: got, ms: t1 - t };
    },
    async teardown(_ctx, s) {
      await s.consumer.shutdown().catch(() => {});
      await s.producer.shutdown().catch(() => {});
    },
  }),
];
