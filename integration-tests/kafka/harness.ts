/**
 * Shared setup of the mqkit Kafka suites: the adapter connected to the real broker, and fresh
 * topics (3 partitions + the `-dlq` topic) created through the admin client.
 */
import { connect, type Client, type ConnectOptions } from '@mqkit/core';
import { kafka, kafkaCapabilities } from '@mqkit/kafka';
import { Kafka, logLevel } from 'kafkajs';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueTopic } from '../src/names.ts';

export const brokers = requireBroker('kafka').brokers;

/**
 * The client library every suite runs on: MQKIT_KAFKA_CLIENT=platformatic|kafkajs (unset = the
 * adapter's default), and MQKIT_KAFKA_GROUP_PROTOCOL=classic|consumer. scripts/test-integration.mjs
 * runs the Kafka suites once per client (see integration-tests/README.md).
 */
export const kafkaClient = parseChoice('MQKIT_KAFKA_CLIENT', ['platformatic', 'kafkajs']);
export const kafkaGroupProtocol = parseChoice('MQKIT_KAFKA_GROUP_PROTOCOL', ['classic', 'consumer']);

function parseChoice(name: string, allowed: readonly string[]): string | undefined {
  const value = process.env[name];
  if (value === undefined || value === '') return undefined;
  if (!allowed.includes(value)) throw new Error(`${name}=${value}: expected one of ${allowed.join(', ')}`);
  return value;
}

export const kafkaUrl = `kafka://${brokers}?clientId=mqkit-it${kafkaClient ? `&client=${kafkaClient}` : ''}${kafkaGroupProtocol ? `&groupProtocol=${kafkaGroupProtocol}` : ''}`;
export const capabilities = kafkaCapabilities(1024 * 1024, 500);

/** MQKIT_KAFKA_DEBUG=1 prints the adapter's warnings and group assignments (not kafkajs' own chatter). */
const debugLogger = {
  debug: (o: object, m?: string) => {
    if (/assigned/.test(m ?? '')) console.log(new Date().toISOString(), m, JSON.stringify(o));
  },
  info: () => {},
  warn: (o: object, m?: string) => console.log(new Date().toISOString(), 'WARN', m, String((o as { err?: Error }).err?.message ?? '')),
  error: (o: object, m?: string) => {
    if (!/kafkajs/.test(m ?? '')) console.log(new Date().toISOString(), 'ERROR', m, String((o as { err?: Error }).err?.message ?? ''));
  },
};

export function connectKafka(options: ConnectOptions = {}): Promise<Client> {
  return connect(kafkaUrl, { adapters: [kafka()], ...(process.env.MQKIT_KAFKA_DEBUG ? { logger: debugLogger } : {}), ...options });
}

const admin = new Kafka({ clientId: 'mqkit-it-admin', brokers: brokers.split(','), logLevel: logLevel.NOTHING }).admin();
let adminReady: Promise<void> | undefined;

/** Creates `${prefix}-…` with `partitions` partitions and its `-dlq` (1 partition keeps DLQ order). */
export async function createTopic(prefix = 'mqkit-kafka', partitions = 3): Promise<string> {
  adminReady ??= admin.connect();
  await adminReady;
  const topic = uniqueTopic(prefix);
  const topics = [topic, `${topic}-dlq`];
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic, numPartitions: partitions, replicationFactor: 1 },
        { topic: `${topic}-dlq`, numPartitions: 1, replicationFactor: 1 },
      ],
    });
  } catch (err) {
    // On a broker started seconds ago, kafkajs' leader wait can fail with "This server does not
    // host this topic-partition" although the topics were created: wait for their leaders here.
    if ((err as { type?: string }).type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw err;
    await waitForLeaders(topics);
  }
  return topic;
}

async function waitForLeaders(topics: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const meta = await admin.fetchTopicMetadata({ topics }).catch(() => undefined);
    if (meta && meta.topics.length === topics.length && meta.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
    if (Date.now() > deadline) throw new Error(`kafka topics ${topics.join(', ')} have no leaders after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const opened: Client[] = [];

/** {@link connectKafka}, closed by {@link closeAll} when the suite ends. */
export async function openKafka(options: ConnectOptions = {}): Promise<Client> {
  const client = await connectKafka(options);
  opened.push(client);
  return client;
}

/** For `afterAll`: closes every client {@link openKafka} made, then the admin client. */
export async function closeAll(): Promise<void> {
  await Promise.allSettled(opened.splice(0).map((c) => c.close({ timeoutMs: 0 })));
  await closeAdmin();
}

export async function closeAdmin(): Promise<void> {
  if (adminReady) await admin.disconnect().catch(() => {});
}
