/**
 * Topology in the portable layer: one description of a topic, its consumer groups and its
 * dead-letter topic (`client.declare()` / `client.verify()`), and the `topology` connect mode
 * that decides what `subscribe()` does about it. Adapters map it onto their broker
 * ({@link DriverTopology}).
 */
import { z } from 'zod';
import { parseOptions } from './config.ts';
import type { Driver, SubscriptionSpec } from './driver/driver.ts';
import { missingTopologyError, type DriverTopology, type TopologySpec } from './driver/topology.ts';
import { MqError } from './errors.ts';

/**
 * What mqkit does about topics and groups:
 * - `create`: `subscribe()` declares its topic, group and dead-letter topic when missing, and the
 *   connect option `topics` is declared at connect;
 * - `verify`: `subscribe()` and `connect({ topics })` check that they exist and fail fast with
 *   NOT_FOUND naming what is missing and the call that creates it (recommended in production,
 *   where topology is provisioned);
 * - `none`: mqkit checks nothing; only the adapter's own options (RabbitMQ/SQS `declare`, Kafka
 *   `createTopics`, RocketMQ `declareGroups`) act, as before this option existed.
 */
export type TopologyMode = 'create' | 'verify' | 'none';

export const topologyModeSchema = z.enum(['create', 'verify', 'none']);

/**
 * One topic as `client.declare()` takes it:
 * - `topic`: the topic name;
 * - `ordered`: keyed messages are consumed in order (RocketMQ: a FIFO topic and orderly groups;
 *   SQS: the name must end in `.fifo`; RabbitMQ: single active consumer). @default false
 * - `delayed`: messages are published with `delayMs` (RocketMQ: a DELAY topic, which cannot also
 *   be ordered; nothing to declare elsewhere). @default false
 * - `transactional`: messages are published inside `client.transaction()` (RocketMQ: a
 *   TRANSACTION topic, which cannot also be ordered or delayed). @default false
 * - `partitions`: partitions (Kafka) or queues per broker (RocketMQ) when the topic is created.
 *   @default the adapter's (`numPartitions`, 8)
 * - `groups`: consumer groups that keep every message published from now on, before their first
 *   subscriber too: a name, or `{ name, options }` with the adapter subscription options the group
 *   will be consumed with where they shape what is declared (SQS/SNS `filterPolicy`, RabbitMQ
 *   `queue`). @default []
 * - `deadLetter`: `true` declares `${topic}-dlq` (what `subscribe()` dead-letters to by default), a
 *   string another name, `false` none. @default true
 */
export type TopicDeclaration = z.input<typeof declarationSchema>;

const declarationSchema = z
  .object({
    topic: z.string().min(1),
    ordered: z.boolean().optional(),
    delayed: z.boolean().optional(),
    transactional: z.boolean().optional(),
    partitions: z.number().int().min(1).max(10_000).optional(),
    groups: z.array(z.union([z.string().min(1), z.object({ name: z.string().min(1), options: z.record(z.string(), z.unknown()).optional() }).strict()])).optional(),
    deadLetter: z.union([z.boolean(), z.string().min(1)]).optional(),
  })
  .strict();

/** Validates a declaration and checks names against the adapter (CONFIG / INVALID_MESSAGE naming the field). */
export function toTopologySpec(driver: Driver, declaration: unknown, where = 'declare'): TopologySpec {
  const d = parseOptions(declarationSchema, declaration, where);
  const { topicPattern, ordering } = driver.capabilities;
  if (!topicPattern.test(d.topic)) throw new MqError('INVALID_MESSAGE', `${where}: topic "${d.topic}" is not a valid ${driver.name} topic name`);
  const deadLetterTopic = d.deadLetter === false ? undefined : d.deadLetter === true || d.deadLetter === undefined ? `${d.topic}-dlq` : d.deadLetter;
  if (deadLetterTopic !== undefined && !topicPattern.test(deadLetterTopic)) {
    throw new MqError('CONFIG', `${where}: dead-letter topic "${deadLetterTopic}" is not a valid ${driver.name} topic name`);
  }
  if (d.ordered && ordering !== 'key') throw new MqError('UNSUPPORTED', `${where}: ${driver.name} does not keep per-key order; declare without ordered: true`);
  const groups: string[] = [];
  const groupOptions: Record<string, Readonly<Record<string, unknown>>> = {};
  for (const g of d.groups ?? []) {
    const name = typeof g === 'string' ? g : g.name;
    if (groups.includes(name)) throw new MqError('CONFIG', `${where}.groups: group "${name}" is listed twice`);
    groups.push(name);
    if (typeof g !== 'string' && g.options) groupOptions[name] = g.options;
  }
  return { topic: d.topic, ordered: d.ordered ?? false, delayed: d.delayed ?? false, transactional: d.transactional ?? false, partitions: d.partitions, groups, deadLetterTopic, groupOptions };
}

/** The adapter's topology step, or UNSUPPORTED naming the adapter. */
export function requireTopology(driver: Driver): DriverTopology {
  if (!driver.topology) throw new MqError('UNSUPPORTED', `${driver.name}: this adapter cannot declare or verify topology; create topics and groups with the broker's own tools`);
  return driver.topology;
}

/** Checks `spec` and throws the NOT_FOUND (or CONFIG, for a misfit) naming what is missing. */
export async function verifyTopology(driver: Driver, spec: TopologySpec): Promise<void> {
  const missing = await requireTopology(driver).verify(spec);
  if (missing.length > 0) throw missingTopologyError(driver.name, missing, spec);
}

/**
 * `driver` as the subscription runtime sees it under `mode`: `receiver()` first declares
 * (`create`) or verifies (`verify`) the subscription's topic, group and dead-letter topic. The
 * driver itself where there is nothing to do.
 */
export function withTopology(driver: Driver, mode: TopologyMode): Driver {
  const topology = driver.topology;
  if (mode === 'none' || !topology) return driver;
  const step = async (spec: SubscriptionSpec): Promise<void> => {
    const topic: TopologySpec = { topic: spec.topic, ordered: spec.ordered, groups: [spec.group], deadLetterTopic: spec.deadLetterTopic, groupOptions: { [spec.group]: spec.options }, forSubscribe: true };
    if (mode === 'create') await topology.declare(topic);
    else await verifyTopology(driver, topic);
  };
  const receiver = async (spec: SubscriptionSpec): ReturnType<Driver['receiver']> => {
    await step(spec);
    return driver.receiver(spec);
  };
  // Everything else is the driver's own (members added to Driver later included), bound to it so
  // that its private fields work.
  return new Proxy(driver, {
    get(target, property) {
      if (property === 'receiver') return receiver;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
