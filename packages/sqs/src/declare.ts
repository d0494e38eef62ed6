/**
 * SQS/SNS's side of the portable topology step, over the declarations `subscribe()` makes
 * (topology.ts): in SNS mode an SNS topic per topic and one SQS queue per group subscribed to it
 * (raw delivery, the subscription's filter policy), the dead-letter topic likewise; in queue mode
 * (`sns=false`) one queue per topic whose groups compete. FIFO (topics and queues) when the
 * name ends in `.fifo`, which `ordered` requires.
 */
import { ListTopicsCommand, type SNSClient } from '@aws-sdk/client-sns';
import { GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { MqError, type DriverTopology, type MissingTopology, type TopologySpec } from '@mqkit/core/driver';
import { classifyAwsError, classifyDeclareError } from './errors.ts';
import { groupQueueName, isFifo, nativeTopicName, topicQueueName } from './names.ts';
import { parseSubscription } from './options.ts';
import type { Topology } from './topology.ts';

export interface SqsTopologyDeps {
  readonly sqs: SQSClient;
  readonly sns: SNSClient | undefined;
  /** A {@link Topology} that creates (declare=true), whatever the adapter's `declare` option. */
  readonly topology: Topology;
  readonly requestTimeoutMs: number;
  /** The adapter's `declare` option: sends create missing topics and queues. */
  readonly declaresOnUse: boolean;
}

export function sqsTopology(deps: SqsTopologyDeps): DriverTopology {
  const signal = (): AbortSignal => AbortSignal.timeout(deps.requestTimeoutMs);
  const check = (spec: TopologySpec): boolean => {
    const fifo = isFifo(spec.topic);
    if (spec.ordered && !fifo) {
      throw new MqError('CONFIG', `sqs keeps per-key order on FIFO topics only: name the topic "${spec.topic}.fifo"`, { details: { topic: spec.topic } });
    }
    if (spec.deadLetterTopic !== undefined && isFifo(spec.deadLetterTopic) !== fifo) {
      throw new MqError('CONFIG', `dead-letter topic "${spec.deadLetterTopic}" must be ${fifo ? '' : 'non-'}FIFO like "${spec.topic}"`);
    }
    return fifo;
  };
  const queueExists = async (name: string): Promise<boolean> => {
    try {
      await deps.sqs.send(new GetQueueUrlCommand({ QueueName: name }), { abortSignal: signal() });
      return true;
    } catch (err) {
      const error = classifyAwsError(err, `GetQueueUrl ${name}`);
      if (error.code === 'NOT_FOUND') return false;
      throw error;
    }
  };
  let topicNames: Promise<Set<string>> | undefined;
  /** SNS topic names (listed once per verify call: AWS has no lookup by name). */
  const snsTopics = (): Promise<Set<string>> =>
    (topicNames ??= (async () => {
      const names = new Set<string>();
      let NextToken: string | undefined;
      try {
        do {
          const r = await deps.sns!.send(new ListTopicsCommand({ NextToken }), { abortSignal: signal() });
          for (const t of r.Topics ?? []) if (t.TopicArn) names.add(t.TopicArn.slice(t.TopicArn.lastIndexOf(':') + 1));
          NextToken = r.NextToken;
        } while (NextToken);
      } catch (err) {
        throw classifyDeclareError(err, 'ListTopics');
      }
      return names;
    })().finally(() => {
      topicNames = undefined;
    }));

  return {
    capabilities: { partitions: false, retainsForDeclaredGroups: true, createsOnPublish: deps.declaresOnUse },
    async declare(spec) {
      const fifo = check(spec);
      const { topology } = deps;
      if (!deps.sns) {
        await topology.queueUrl(topicQueueName(spec.topic), fifo);
        if (spec.deadLetterTopic !== undefined) await topology.queueUrl(topicQueueName(spec.deadLetterTopic), fifo);
        return;
      }
      await topology.topicArn(nativeTopicName(spec.topic), fifo);
      if (spec.deadLetterTopic !== undefined) await topology.topicArn(nativeTopicName(spec.deadLetterTopic), fifo);
      for (const group of spec.groups) {
        // What the group will be consumed with (its filter policy), when given.
        const settings = parseSubscription(spec.groupOptions?.[group] ?? {});
        await topology.groupQueue({
          topicName: nativeTopicName(spec.topic),
          queueName: groupQueueName(spec.topic, group),
          fifo,
          filterPolicy: settings.filterPolicy,
          filterPolicyScope: settings.filterPolicyScope,
        });
        if (spec.deadLetterTopic !== undefined) {
          // The group's queue on the dead-letter topic keeps its dead letters (as subscribe declares it).
          await topology.groupQueue({
            topicName: nativeTopicName(spec.deadLetterTopic),
            queueName: groupQueueName(spec.deadLetterTopic, group),
            fifo,
            filterPolicyScope: 'MessageAttributes',
          });
        }
      }
    },
    async verify(spec) {
      check(spec);
      const missing: MissingTopology[] = [];
      if (!deps.sns) {
        if (!(await queueExists(topicQueueName(spec.topic)))) missing.push({ kind: 'topic', name: spec.topic });
        if (spec.deadLetterTopic !== undefined && !(await queueExists(topicQueueName(spec.deadLetterTopic)))) missing.push({ kind: 'dead-letter topic', name: spec.deadLetterTopic });
        return missing;
      }
      const topics = await snsTopics();
      if (!topics.has(nativeTopicName(spec.topic))) missing.push({ kind: 'topic', name: spec.topic });
      for (const group of spec.groups) if (!(await queueExists(groupQueueName(spec.topic, group)))) missing.push({ kind: 'group', name: group, topic: spec.topic });
      if (spec.deadLetterTopic !== undefined && !topics.has(nativeTopicName(spec.deadLetterTopic))) missing.push({ kind: 'dead-letter topic', name: spec.deadLetterTopic });
      return missing;
    },
  };
}
