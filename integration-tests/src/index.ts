/** Helpers shared by the integration suites (integration-tests/<broker>/*.test.ts). */
export * from './endpoints.ts';
export * from './names.ts';
export * from './wait.ts';
export { createRocketmqTopics, waitForTopicRoute, quietRocketmqLogger, type RocketmqTopicType } from './rocketmq.ts';
export { CONTAINER_IMAGES, ROCKETMQ_SEED_TOPICS } from './containers.ts';
