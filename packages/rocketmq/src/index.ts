/**
 * `@mqkit/rocketmq`: the mqkit adapter for Apache RocketMQ 5 through its gRPC proxy, over
 * rocketmq-client-nodejs.
 *
 *   const client = await connect('rocketmq://127.0.0.1:8081?namespace=', { adapters: [rocketmq()] });
 */
import { configError, type Adapter, type DriverContext } from '@mqkit/core/driver';
import { RocketmqDriver } from './driver.ts';
import { parseConfig } from './options.ts';

export { RocketmqDriver, RocketmqTransaction, ROCKETMQ_CAPABILITIES, type RocketmqNative } from './driver.ts';
export { RocketmqAdmin, type RocketmqAdminOptions, type CreateTopicOptions, type CreateGroupOptions } from './admin.ts';
export { classify as classifyRocketmqError } from './classify.ts';
export type { RocketmqOptions, RocketmqSubscribeOptions } from './options.ts';
export type { TopicType } from './topic-types.ts';
export type { TransactionCheck, TransactionState, CheckedMessage } from './transaction-checker.ts';
export { PROPERTY as ROCKETMQ_PROPERTIES } from './message-codec.ts';

/** The adapter for `rocketmq://` URLs (what `connect()` loads by scheme). */
export function adapter(): Adapter {
  return {
    schemes: ['rocketmq'],
    async create(url: string, options: Readonly<Record<string, unknown>>, context: DriverContext) {
      if (!/^rocketmq:\/\//i.test(url)) throw configError('rocketmq: the URL must start with rocketmq://', url);
      const config = parseConfig(url, options);
      return RocketmqDriver.connect(config, context);
    },
  };
}

/** Friendly alias of {@link adapter}: `connect(url, { adapters: [rocketmq()] })`. */
export const rocketmq = adapter;
export { ops } from './ops.ts';
