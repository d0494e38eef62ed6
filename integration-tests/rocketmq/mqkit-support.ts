/**
 * Shared by the @mqkit/rocketmq suites: endpoints, typed topics created through the adapter's own
 * declare step (remoting to the broker, milliseconds) with the brokers.sh tooling as fallback,
 * and connecting an mqkit client with test-friendly timings.
 */
import { connect, type Client, type ConnectOptions } from '@mqkit/core';
import { RocketmqAdmin, rocketmq, type RocketmqOptions, type TopicType } from '@mqkit/rocketmq';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueTopic } from '../src/names.ts';
import { createRocketmqTopics, waitForTopicRoute } from '../src/rocketmq.ts';

/** Invisible duration used by the suites: the proxy floor the issue asks for (≥ 10 s). */
export const INVISIBLE_MS = 10_000;

export function rocketmqEndpoint(): { endpoints: string; namesrv: string | undefined } {
  const { endpoints, namesrv } = requireBroker('rocketmq');
  return { endpoints, namesrv };
}

let admin: RocketmqAdmin | undefined;

/** Creates typed topics (NAME → TYPE) and waits until the proxy routes them. */
export async function createTopics(topics: Record<string, TopicType>, options: { queues?: number } = {}): Promise<void> {
  const { endpoints, namesrv } = rocketmqEndpoint();
  const entries = Object.entries(topics);
  if (namesrv) {
    admin ??= new RocketmqAdmin({ namesrv });
    await Promise.all(entries.map(([name, type]) => admin!.createTopic(name, type, options)));
    await Promise.all(entries.map(([name]) => waitForTopicRoute(name, endpoints)));
  } else {
    if (options.queues !== undefined) throw new Error('createTopics: a queue count needs the namesrv (RocketmqAdmin)');
    await createRocketmqTopics(entries.map(([name, type]) => `${name}:${type}`));
  }
}

/** A fresh topic of `type` plus its NORMAL `${topic}-dlq`. */
export async function freshTopic(prefix: string, type: TopicType, options: { queues?: number } = {}): Promise<string> {
  const topic = uniqueTopic(prefix);
  await createTopics({ [topic]: type, [`${topic}-dlq`]: 'NORMAL' }, options);
  return topic;
}

/** The URL of the broker under test. */
export function rocketmqUrl(): string {
  return `rocketmq://${rocketmqEndpoint().endpoints.split(';').join(',')}`;
}

/** An mqkit client on the broker under test. */
export function connectRocketmq(options: RocketmqOptions = {}, extra: ConnectOptions = {}): Promise<Client> {
  const { namesrv } = rocketmqEndpoint();
  return connect(rocketmqUrl(), {
    ...(process.env.MQKIT_TEST_LOG ? { logger: consoleLogger } : {}),
    ...extra,
    adapters: [rocketmq()],
    options: { invisibleDurationMs: INVISIBLE_MS, awaitDurationMs: 2000, ...(namesrv ? { namesrv } : {}), ...options },
  });
}

/** MQKIT_TEST_LOG=1: adapter warnings and errors on stderr, for debugging a suite; =debug: everything. */
const consoleLogger = {
  debug: (obj: object, msg?: string) => {
    if (process.env.MQKIT_TEST_LOG === 'debug') console.warn(`[mqkit debug] ${msg ?? ''}`, obj);
  },
  info() {},
  warn: (obj: object, msg?: string) => console.warn(`[mqkit warn] ${msg ?? ''}`, obj),
  error: (obj: object, msg?: string) => console.error(`[mqkit error] ${msg ?? ''}`, obj),
};
