/** `@mqkit/redis-streams`: Redis Streams over ioredis; a topic is a stream, a group a consumer group (README.md). */
export { redisStreams, adapter, redisStreamsCapabilities, RedisStreamsDriver, MAX_DELAY_MS } from './driver.ts';
export { PARKING_CONSUMER } from './receiver.ts';
export { encodeFields, decodeFields } from './codec.ts';
export type { RedisStreamsOptions } from './options.ts';
export { ops } from './ops.ts';
