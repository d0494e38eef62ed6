/**
 * Which real brokers the outbox crash tests run against: every broker resolved for this run
 * (MQKIT_INTEGRATION_BROKERS) whose adapter package exports `adapter()`, or the subset named by
 * MQKIT_OUTBOX_BROKERS. Also how each one is reached and how a fresh topic is made.
 */
import type { Adapter } from '@mqkit/core/driver';
import { endpoints, type BrokerEndpoints } from '../src/endpoints.ts';
import { uniqueName } from '../src/names.ts';
import { waitForTopicRoute } from '../src/rocketmq.ts';

export interface Target {
  /** Broker name, e.g. `kafka`. */
  name: 'kafka' | 'rabbitmq' | 'rocketmq' | 'sqs';
  /** Adapter package the workers import. */
  pkg: string;
  /** mqkit URL for connect(). */
  url: string;
  /** Adapter options for connect() (workers get them as MQ_OPTIONS JSON). */
  options: Record<string, unknown>;
  adapter: Adapter;
  /** A fresh topic (plus its `-dlq`) that keeps per-key order when `ordered`. */
  topic(prefix: string, ordered: boolean): Promise<string>;
  /** Outbox `maxPerKey` for this adapter (1 where one publish call's batches go out concurrently). */
  maxPerKey: number;
  /** Whether the broker itself drops a re-sent message id (SQS FIFO deduplication). */
  dropsDuplicates(ordered: boolean): boolean;
}

const PACKAGES = { kafka: '@mqkit/kafka', rabbitmq: '@mqkit/rabbitmq', rocketmq: '@mqkit/rocketmq', sqs: '@mqkit/sqs' } as const;

type Plain = Pick<Target, 'url' | 'options' | 'topic' | 'dropsDuplicates'> & { maxPerKey?: number };

async function describeTarget(name: Target['name'], e: BrokerEndpoints[Target['name']], mod: Record<string, unknown>): Promise<Plain> {
  const plainTopic = async (prefix: string): Promise<string> => uniqueName(prefix);
  switch (name) {
    case 'kafka':
      return { url: `kafka://${(e as BrokerEndpoints['kafka']).brokers}?createTopics=true`, options: {}, topic: plainTopic, dropsDuplicates: () => false };
    case 'rabbitmq':
      return { url: (e as BrokerEndpoints['rabbitmq']).url, options: {}, topic: plainTopic, dropsDuplicates: () => false };
    case 'sqs': {
      const s = e as BrokerEndpoints['sqs'];
      const params = new URLSearchParams({ region: s.region, endpoint: s.endpoint, sns: 'false' });
      return {
        url: `sqs://?${params.toString()}`,
        options: { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } },
        // Per-key order on SQS needs a FIFO queue, whose 5-minute deduplication drops a re-sent id.
        topic: async (prefix, ordered) => uniqueName(prefix, { fifo: ordered }),
        dropsDuplicates: (ordered) => ordered,
        // The adapter sends a publish call's batches of 10 as parallel requests.
        maxPerKey: 1,
      };
    }
    case 'rocketmq': {
      const r = e as BrokerEndpoints['rocketmq'];
      const Admin = mod.RocketmqAdmin as new (o: { namesrv: string }) => { createTopic(name: string, type: string): Promise<void> };
      if (!r.namesrv) throw new Error('outbox crash tests on rocketmq need the namesrv address to create typed topics');
      const admin = new Admin({ namesrv: r.namesrv });
      return {
        url: `rocketmq://${r.endpoints.split(';').join(',')}`,
        options: { invisibleDurationMs: 10_000, awaitDurationMs: 2_000, namesrv: r.namesrv },
        topic: async (prefix, ordered) => {
          const topic = uniqueName(prefix);
          await admin.createTopic(topic, ordered ? 'FIFO' : 'NORMAL');
          await admin.createTopic(`${topic}-dlq`, 'NORMAL');
          await waitForTopicRoute(topic, r.endpoints);
          return topic;
        },
        dropsDuplicates: () => false,
        // The adapter sends each message of a batch as its own concurrent request.
        maxPerKey: 1,
      };
    }
  }
}

export async function outboxTargets(): Promise<Target[]> {
  const resolved = endpoints();
  const wanted = process.env.MQKIT_OUTBOX_BROKERS?.split(/[\s,]+/).filter(Boolean);
  const out: Target[] = [];
  for (const name of Object.keys(PACKAGES) as Array<Target['name']>) {
    const r = resolved[name];
    if (!r || (wanted && !wanted.includes(name))) continue;
    let mod: Record<string, unknown> & { adapter?: () => Adapter };
    try {
      mod = (await import(PACKAGES[name])) as typeof mod;
    } catch {
      continue;
    }
    if (typeof mod.adapter !== 'function') continue;
    out.push({ name, pkg: PACKAGES[name], adapter: mod.adapter(), maxPerKey: 0, ...(await describeTarget(name, r.endpoint, mod)) });
  }
  return out;
}
