/**
 * The mqkit conformance suite against the real RabbitMQ (`pnpm brokers up rabbitmq`).
 * Every capability the adapter claims is exercised; transactions are not claimed (use the outbox).
 */
import { connect } from '@mqkit/core';
import { rabbitmq, rabbitmqCapabilities } from '@mqkit/rabbitmq';
import { runConformance } from '@mqkit/testing/conformance';
import { afterAll } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueTopic } from '../src/names.ts';
import { deleteTopicResources } from './cleanup.ts';

const { url } = requireBroker('rabbitmq');

const topics = new Set<string>();
afterAll(async () => {
  await deleteTopicResources(url, topics);
}, 120_000);

runConformance({
  name: 'rabbitmq',
  capabilities: rabbitmqCapabilities(),
  connect: () => connect(url, { adapters: [rabbitmq()] }),
  // Exchanges and queues are declared by the adapter on first use; a fresh name is all a test needs.
  topic: async () => {
    const topic = uniqueTopic('conf');
    topics.add(topic);
    return topic;
  },
  timing: { deliveryMs: 10_000, redeliveryMs: 10_000, quietMs: 500, testMs: 45_000, delayMs: 1_000 },
}, { model: { runs: 6 } }); // + the model-based sweep (small workloads), issue #16
