/**
 * Redis Streams' side of the portable topology step: a topic is a stream, a group a consumer
 * group on it created at `0` (as a subscription creates it: it reads the stream from its start,
 * so it keeps what was published before its first subscriber, within the stream's trimming).
 */
import type { DriverTopology, MissingTopology } from '@mqkit/core/driver';
import type { Redis } from 'ioredis';
import { execAll, toMqError } from './errors.ts';
import { createGroup } from './receiver.ts';

/** Placeholder group that makes MKSTREAM create an empty stream; destroyed in the same MULTI. */
const MAKER = 'mqkit-declare';

export function redisStreamsTopology(redis: Redis): DriverTopology {
  const createStream = async (topic: string): Promise<void> => {
    if ((await redis.exists(topic).catch((err: unknown) => Promise.reject(toMqError(err, `checking stream ${topic}`)))) === 1) return;
    // Redis has no "create an empty stream" command: MKSTREAM through a throwaway group.
    await execAll(redis.multi().xgroup('CREATE', topic, MAKER, '$', 'MKSTREAM').xgroup('DESTROY', topic, MAKER), `creating stream ${topic}`).catch((err: unknown) => {
      if (!/BUSYGROUP/.test((err as Error).message ?? '')) throw err;
    });
  };
  const groupsOf = async (topic: string): Promise<Set<string> | undefined> => {
    const type = await redis.type(topic).catch((err: unknown) => Promise.reject(toMqError(err, `checking stream ${topic}`)));
    if (type !== 'stream') return undefined;
    const info = (await redis.xinfo('GROUPS', topic).catch((err: unknown) => Promise.reject(toMqError(err, `listing groups of ${topic}`)))) as unknown[][];
    const names = new Set<string>();
    for (const entry of info) {
      const at = entry.indexOf('name');
      if (at >= 0) names.add(String(entry[at + 1]));
    }
    return names;
  };
  return {
    capabilities: { partitions: false, retainsForDeclaredGroups: true, createsOnPublish: true },
    async declare(spec) {
      if (spec.groups.length === 0) await createStream(spec.topic);
      for (const group of spec.groups) await createGroup(redis, spec.topic, group);
      if (spec.deadLetterTopic !== undefined) await createStream(spec.deadLetterTopic);
    },
    async verify(spec) {
      const missing: MissingTopology[] = [];
      const groups = await groupsOf(spec.topic);
      if (!groups) missing.push({ kind: 'topic', name: spec.topic });
      for (const group of spec.groups) if (!groups?.has(group)) missing.push({ kind: 'group', name: group, topic: spec.topic });
      if (spec.deadLetterTopic !== undefined && (await redis.exists(spec.deadLetterTopic)) !== 1) missing.push({ kind: 'dead-letter topic', name: spec.deadLetterTopic });
      return missing;
    },
  };
}
