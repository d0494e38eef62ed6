/**
 * `@mqkit/redis-streams`: the mqkit adapter for Redis Streams over ioredis.
 *
 * `connect('redis://localhost:6379', { adapters: [redisStreams()] })`: a topic is a stream, a
 * group a consumer group. See README.md.
 */
export { redisStreams, adapter, redisStreamsCapabilities, RedisStreamsDriver, MAX_DELAY_MS } from './driver.ts';
export { PARKING_CONSUMER } from './receiver.ts';
export { encodeFields, decodeFields, FIELDS } from './codec.ts';
