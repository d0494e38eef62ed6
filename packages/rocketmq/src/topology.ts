/**
 * RocketMQ's side of the portable topology step: typed topics (FIFO when ordered, DELAY when
 * delayed, TRANSACTION when transactional, else NORMAL)
 * and consumer groups (orderly when ordered) through the remoting admin ({@link RocketmqAdmin},
 * which needs the name server: `namesrv`), and "does not exist" errors that say how to create
 * them. The gRPC proxy has no admin API.
 */
import { missingTopologyError, MqError, type DriverTopology, type MissingTopology, type TopologySpec } from '@mqkit/core/driver';
import type { RocketmqAdmin } from './admin.ts';
import { classify } from './classify.ts';
import type { TopicType } from './topic-types.ts';

/** What the topology step needs from the driver. */
export interface RocketmqTopologyDeps {
  readonly admin: RocketmqAdmin | undefined;
  /** The topic's type from its route; rejects (classified NOT_FOUND) when it has none. */
  topicType(topic: string): Promise<TopicType>;
  /** Forget a cached type or miss (after creating the topic). */
  forget(topic: string): void;
}

/** What to do when the name server is not configured. */
export const NAMESRV_HINT = 'mqkit creates RocketMQ topics and groups through the name server: add namesrv=host:9876 to the URL or options';
const MQADMIN_HINT = `${NAMESRV_HINT}, or create the topic with mqadmin updateTopic -t NAME -c CLUSTER -a +message.type=NORMAL (FIFO for ordered)`;

/** What a declaration calls each topic type. */
const TYPE_WORD: Readonly<Record<TopicType, string>> = { NORMAL: 'plain', FIFO: 'ordered', DELAY: 'delayed', TRANSACTION: 'transactional' };

/** How long a created topic may take to get a route the proxy serves. */
const ROUTE_WAIT_MS = 30_000;

export function rocketmqTopology(deps: RocketmqTopologyDeps): DriverTopology {
  /**
   * The topic's type, or undefined when it does not exist. Existence comes from the name server
   * when there is one (the proxy caches a miss), the type from the proxy's route.
   */
  const typeOf = async (topic: string): Promise<TopicType | undefined> => {
    if (deps.admin) {
      const exists = await deps.admin.topicExists(topic).catch((err: unknown) => {
        throw classify(err, { topic });
      });
      if (!exists) return undefined;
    }
    try {
      return await deps.topicType(topic);
    } catch (err) {
      const error = classify(err, { topic });
      if (error.code === 'NOT_FOUND') return undefined;
      throw error;
    }
  };
  const requireAdmin = (spec: TopologySpec): RocketmqAdmin => {
    if (!deps.admin) {
      throw new MqError('CONFIG', `rocketmq: cannot declare topic "${spec.topic}": ${NAMESRV_HINT}`, { details: { topic: spec.topic } });
    }
    return deps.admin;
  };
  /** The topic type a declaration asks for, or undefined when any serves (a plain topic). */
  const wantedType = (spec: TopologySpec): TopicType | undefined => {
    const asked = [spec.ordered && 'FIFO', spec.delayed && 'DELAY', spec.transactional && 'TRANSACTION'].filter((t): t is TopicType => typeof t === 'string');
    if (asked.length > 1) {
      throw new MqError('CONFIG', `rocketmq: topic "${spec.topic}" cannot be ${asked.map((t) => TYPE_WORD[t]).join(' and ')} at once: a RocketMQ topic is FIFO, DELAY or TRANSACTION (use one topic for each)`, {
        details: { topic: spec.topic },
      });
    }
    return asked[0];
  };
  const misfit = (spec: TopologySpec, type: TopicType): string | undefined => {
    const wanted = wantedType(spec);
    if (wanted === undefined || type === wanted) return undefined;
    return `is a ${type} topic; ${TYPE_WORD[wanted]} needs a ${wanted} topic (RocketMQ topic types cannot change while in use: use a new ${wanted} topic)`;
  };
  const typeFor = (spec: TopologySpec): TopicType => wantedType(spec) ?? 'NORMAL';

  return {
    capabilities: { partitions: true, retainsForDeclaredGroups: true },
    async declare(spec) {
      const type = typeFor(spec);
      const admin = requireAdmin(spec);
      const wanted: Array<[string, TopicType, number | undefined]> = [[spec.topic, type, spec.partitions]];
      if (spec.deadLetterTopic !== undefined) wanted.push([spec.deadLetterTopic, 'NORMAL', undefined]);
      for (const [topic, type, queues] of wanted) {
        const existing = await typeOf(topic);
        if (existing !== undefined) {
          // An existing topic keeps its type (a DELAY or TRANSACTION topic serves plain consumers
          // too); only an ordered declaration on a non-FIFO topic cannot be served.
          const problem = topic === spec.topic ? misfit(spec, existing) : undefined;
          if (problem) throw missingTopologyError('rocketmq', [{ kind: 'topic', name: topic, problem }], spec);
          continue;
        }
        await admin.createTopic(topic, type, queues === undefined ? {} : { queues }).catch((err: unknown) => {
          throw classify(err, { topic });
        });
        await waitForRoute(deps, topic);
      }
      if (spec.groups.length > 0) {
        const existing = await admin.groups().catch((err: unknown) => {
          throw classify(err, { topic: spec.topic });
        });
        for (const group of spec.groups) {
          // Only missing groups: creating updates in place, and would reset a group's retry count
          // or orderliness that a subscription raised.
          if (existing.has(group)) continue;
          await admin.createGroup(group, { orderly: spec.ordered }).catch((err: unknown) => {
            throw classify(err, { topic: spec.topic, group });
          });
        }
        // The group keeps what is published from now on: its offsets on this topic start at the
        // end now (see startGroupAtEnd). A subscriber about to start needs none of it.
        if (!spec.forSubscribe) {
          for (const group of spec.groups) {
            await admin.startGroupAtEnd(group, spec.topic).catch((err: unknown) => {
              throw classify(err, { topic: spec.topic, group });
            });
          }
        }
      }
    },
    async verify(spec) {
      const missing: MissingTopology[] = [];
      const type = await typeOf(spec.topic);
      if (type === undefined) missing.push({ kind: 'topic', name: spec.topic });
      else {
        const problem = misfit(spec, type);
        if (problem) missing.push({ kind: 'topic', name: spec.topic, problem });
      }
      // Groups are visible only through the name server; without it they are not checked.
      if (deps.admin && spec.groups.length > 0) {
        const groups = await deps.admin.groups().catch((err: unknown) => {
          throw classify(err, { topic: spec.topic });
        });
        for (const group of spec.groups) if (!groups.has(group)) missing.push({ kind: 'group', name: group, topic: spec.topic });
      }
      if (spec.deadLetterTopic !== undefined && (await typeOf(spec.deadLetterTopic)) === undefined) missing.push({ kind: 'dead-letter topic', name: spec.deadLetterTopic });
      return missing;
    },
  };
}

/** Polls the topic's route until the proxy serves it (the name server learns it from the broker). */
async function waitForRoute(deps: RocketmqTopologyDeps, topic: string): Promise<void> {
  const deadline = Date.now() + ROUTE_WAIT_MS;
  for (;;) {
    deps.forget(topic);
    try {
      await deps.topicType(topic);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new MqError('TIMEOUT', `rocketmq: topic "${topic}" was created but has no route after ${ROUTE_WAIT_MS} ms`, { cause: err, details: { topic } });
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/**
 * A NOT_FOUND from the proxy ("No topic route info in name server for the topic") as an error
 * naming the topic and how to create it; other errors as they are.
 */
export function explainMissingTopic(error: MqError, topic: string, group: string | undefined, hasAdmin: boolean): MqError {
  if (error.code !== 'NOT_FOUND') return error;
  return missingTopologyError('rocketmq', [{ kind: 'topic', name: topic }], { topic, ordered: false, groups: group === undefined ? [] : [group] }, hasAdmin ? undefined : MQADMIN_HINT, error);
}
