/**
 * `@mqkit/redis`: a dedup store for mqkit's idempotent consumers on Redis (ioredis), with
 * processing leases that expire when a consumer dies and done marks with a TTL.
 *
 * ```ts
 * const store = redisDedupStore(process.env.REDIS_URL!);
 * await mq.subscribe('orders', { group: 'mailer', middleware: [idempotent(store)], handler });
 * ```
 */
export { RedisDedupStore, redisDedupStore, type RedisLike } from './dedup-store.ts';
export { parseRedisDedupOptions, redisConnectionUrl, type RedisDedupOptions } from './options.ts';
export { classifyRedisError, toRedisMqError } from './errors.ts';
