/**
 * Every benchmark row, per broker. To add rows (e.g. mqkit beside the raw clients), write a module
 * exporting `defineScenario(...)` values and spread them into `scenarios` below; give each mqkit row
 * `baseline: '<raw row name>'` to get the mqkit / raw ratio in the same run (see bench/README.md).
 */
import { kafkaScenarios, kafkaSuite } from './raw/kafka.ts';
import { platformaticScenarios } from './raw/platformatic.ts';
import { rabbitmqScenarios, rabbitmqSuite } from './raw/rabbitmq.ts';
import { rocketmqScenarios, rocketmqSuite } from './raw/rocketmq.ts';
import { sqsScenarios, sqsSuite } from './raw/sqs.ts';
import { redisScenarios, redisSuite } from './raw/redis.ts';
import { mqkitKafkaScenarios } from './mqkit/kafka.ts';
import { mqkitRabbitmqScenarios } from './mqkit/rabbitmq.ts';
import { mqkitRocketmqScenarios } from './mqkit/rocketmq.ts';
import { mqkitSqsScenarios } from './mqkit/sqs.ts';
import { mqkitRedisScenarios } from './mqkit/redis.ts';
import { rssScenarios } from './mqkit/rss.ts';
import type { BenchBroker, BrokerSuite, Scenario } from './types.ts';

export const suites: { [B in BenchBroker]: BrokerSuite<B> } = {
  kafka: kafkaSuite,
  rabbitmq: rabbitmqSuite,
  rocketmq: rocketmqSuite,
  sqs: sqsSuite,
  redis: redisSuite,
};

export const scenarios: Scenario[] = [
  ...kafkaScenarios,
  ...platformaticScenarios,
  ...mqkitKafkaScenarios,
  ...rabbitmqScenarios,
  ...mqkitRabbitmqScenarios,
  ...rocketmqScenarios,
  ...mqkitRocketmqScenarios,
  ...sqsScenarios,
  ...mqkitSqsScenarios,
  // opt-in (`--only rss`): one backlog-drain memory row per broker
  ...rssScenarios,
  ...redisScenarios,
  ...mqkitRedisScenarios,
] as Scenario[];
