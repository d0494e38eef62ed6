/**
 * Kafka's side of the portable topology step: topics (with partitions, replication and
 * min.insync.replicas) through
 * the admin client, and the "does not exist" errors that say how to create them.
 *
 * Groups: a Kafka consumer group comes into being when its first member joins or offsets are
 * committed for it. Declaring one commits the earliest retained offsets of a group that has none,
 * so its first member starts there whatever its `fromBeginning`: it keeps every message published
 * before its first subscriber (within the topic's retention). The Kafka group of an mqkit group is
 * `<group>.<topic>` (see nativeGroupId).
 */
import { missingTopologyError, type MqError, type DriverTopology, type MissingTopology, type TopologySpec } from '@mqkit/core/driver';
import type { AdminSeam, TopicSpec } from './client/seam.ts';

/** What the topology step needs from the driver. */
export interface KafkaTopologyDeps {
  /** Creates missing topics (the driver's cached admin path). */
  ensure(specs: readonly TopicSpec[]): Promise<void>;
  admin(): Promise<AdminSeam>;
  classify(err: unknown, context: Readonly<Record<string, unknown>>): MqError;
  readonly numPartitions: number;
  readonly replicationFactor: number;
  readonly minInsyncReplicas: number | undefined;
  /** The `createTopics` option: sends create missing topics. */
  readonly createsOnPublish: boolean;
  /** The Kafka group id of an mqkit group on a topic. */
  groupId(group: string, topic: string): string;
}

export function kafkaTopology(deps: KafkaTopologyDeps): DriverTopology {
  const topics = (spec: TopologySpec): string[] => [spec.topic, ...(spec.deadLetterTopic === undefined ? [] : [spec.deadLetterTopic])];
  return {
    capabilities: { partitions: true, retainsForDeclaredGroups: true, createsOnPublish: deps.createsOnPublish },
    async declare(spec) {
      const wanted = topics(spec).map((topic, i) => ({
        topic,
        // The dead-letter topic takes the adapter's default: it carries no per-key order to scale.
        numPartitions: i === 0 ? (spec.partitions ?? deps.numPartitions) : deps.numPartitions,
        replicationFactor: deps.replicationFactor,
        minInsyncReplicas: deps.minInsyncReplicas,
      }));
      try {
        await deps.ensure(wanted);
      } catch (err) {
        throw deps.classify(err, { topics: wanted.map((w) => w.topic) });
      }
      // A subscription's own group joins right after and starts where its fromBeginning says.
      if (spec.forSubscribe || spec.groups.length === 0) return;
      await withAdmin(deps, { topic: spec.topic }, async (admin) => {
        for (const group of spec.groups) await admin.declareGroup(deps.groupId(group, spec.topic), spec.topic);
      });
    },
    async verify(spec) {
      const groupIds = spec.groups.map((g) => deps.groupId(g, spec.topic));
      const [counts, groups] = await withAdmin(deps, { topic: spec.topic }, async (admin) => [
        await admin.topicPartitions(topics(spec)),
        groupIds.length === 0 ? new Set<string>() : await admin.existingGroups(groupIds),
      ] as const);
      const missing: MissingTopology[] = [];
      const partitions = counts.get(spec.topic);
      if (partitions === undefined) missing.push({ kind: 'topic', name: spec.topic });
      else if (spec.partitions !== undefined && partitions < spec.partitions) {
        missing.push({ kind: 'topic', name: spec.topic, problem: `has ${partitions} partitions, fewer than the ${spec.partitions} declared (add partitions with kafka-topics --alter)` });
      }
      spec.groups.forEach((group, i) => {
        if (!groups.has(groupIds[i]!)) missing.push({ kind: 'group', name: group, topic: spec.topic });
      });
      if (spec.deadLetterTopic !== undefined && !counts.has(spec.deadLetterTopic)) missing.push({ kind: 'dead-letter topic', name: spec.deadLetterTopic });
      return missing;
    },
  };
}

async function withAdmin<T>(deps: KafkaTopologyDeps, context: Readonly<Record<string, unknown>>, run: (admin: AdminSeam) => Promise<T>): Promise<T> {
  let admin: AdminSeam | undefined;
  try {
    admin = await deps.admin();
    return await run(admin);
  } catch (err) {
    throw deps.classify(err, context);
  } finally {
    await admin?.disconnect().catch(() => {});
  }
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
