/**
 * `@mqkit/rabbitmq`: the RabbitMQ (AMQP 0-9-1) adapter over amqplib.
 *
 *   import { connect } from '@mqkit/core';
 *   import { rabbitmq } from '@mqkit/rabbitmq';
 *   const client = await connect('amqp://user:pass@host:5672/vhost', { adapters: [rabbitmq()] });
 */
import type { Adapter } from '@mqkit/core/driver';
import { RabbitmqDriver } from './driver.ts';
import { parseConnection } from './options.ts';

export { RabbitmqDriver, MAX_DELAY_MS, rabbitmqCapabilities, type RabbitmqNative } from './driver.ts';
export type { RabbitmqOptions } from './options.ts';
export type { RabbitmqSubscribeOptions } from './receiver.ts';
export { classifyError } from './errors.ts';
export { TOPIC_PATTERN, groupQueueName, publishDelayQueueName, retryDelayQueueName, delayBucket } from './names.ts';

/** The RabbitMQ adapter for `amqp://` and `amqps://` URLs. */
export function rabbitmq(): Adapter {
  return {
    schemes: ['amqp', 'amqps'],
    async create(url, options, context) {
      const settings = parseConnection(url, options);
      return RabbitmqDriver.connect(settings, context);
    },
  };
}

/** Alias of {@link rabbitmq}: the name `connect()` looks for when it loads this package by scheme. */
export const adapter = rabbitmq;
export { ops } from './ops.ts';
