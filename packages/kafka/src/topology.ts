/**
 * Kafka's side of the portable topology step: topics (with partitions and replication) through
 * the admin client, and the "does not exist" errors that say how to create them.
 *
 * Groups: a Kafka consumer group comes into being when its first member joins, and a subscription
 * starts at the earliest retained offset by default (`fromBeginning`), so a declared group keeps
 * what was published before its first subscriber without anything created for it (within the
 * topic's retention). Declaring a group creates nothing and verifying one checks nothing.
 */
import { missingTopologyError, MqError, type DriverTopology, type MissingTopology, type TopologySpec } from '@mqkit/core/driver';
import type { AdminSeam, TopicSpec } from './client/seam.ts';

/** What the topology step needs from the driver. */
export interface KafkaTopologyDeps {
  /** Creates missing topics (the driver's cached admin path). */
  ensure(specs: readonly TopicSpec[]): Promise<void>;
  admin(): Promise<AdminSeam>;
  classify(err: unknown, context: Readonly<Record<string, unknown>>): MqError;
  readonly numPartitions: number;
  readonly replicationFactor: number;
}

export function kafkaTopology(deps: KafkaTopologyDeps): DriverTopology {
  const topics = (spec: TopologySpec): string[] => [spec.topic, ...(spec.deadLetterTopic === undefined ? [] : [spec.deadLetterTopic])];
  return {
    capabilities: { partitions: true, retainsForDeclaredGroups: true },
    async declare(spec) {
      const wanted = topics(spec).map((topic, i) => ({
        topic,
        // The dead-letter topic takes the adapter's default: it carries no per-key order to scale.
        numPartitions: i === 0 ? (spec.partitions ?? deps.numPartitions) : deps.numPartitions,
        replicationFactor: deps.replicationFactor,
      }));
      try {
        await deps.ensure(wanted);
      } catch (err) {
        throw deps.classify(err, { topics: wanted.map((w) => w.topic) });
      }
    },
    async verify(spec) {
      let counts: Map<string, number>;
      const admin = await deps.admin();
      try {
        counts = await admin.topicPartitions(topics(spec));
      } catch (err) {
        throw deps.classify(err, { topic: spec.topic });
      } finally {
        await admin.disconnect().catch(() => {});
      }
      const missing: MissingTopology[] = [];
      const partitions = counts.get(spec.topic);
      if (partitions === undefined) missing.push({ kind: 'topic', name: spec.topic });
      else if (spec.partitions !== undefined && partitions < spec.partitions) {
        missing.push({ kind: 'topic', name: spec.topic, problem: `has ${partitions} partitions, fewer than the ${spec.partitions} declared (add partitions with kafka-topics --alter)` });
      }
      if (spec.deadLetterTopic !== undefined && !counts.has(spec.deadLetterTopic)) missing.push({ kind: 'dead-letter topic', name: spec.deadLetterTopic });
      return missing;
    },
  };
}

/** How to create a missing topic besides the portable call. */
export const KAFKA_CREATE_HINT = 'or set the kafka option createTopics=true; the broker must allow CreateTopics for this client';

/**
 * A NOT_FOUND from Kafka ("This server does not host this topic-partition") as an error naming
 * the topic and how to create it; other errors as they are.
 */
export function explainMissingTopic(error: MqError, topic: string, group?: string): MqError {
  if (error.code !== 'NOT_FOUND') return error;
  const missing: MissingTopology[] = [{ kind: 'topic', name: topic }];
  return missingTopologyError('kafka', missing, { topic, ordered: false, groups: group === undefined ? [] : [group] }, KAFKA_CREATE_HINT, error);
}
