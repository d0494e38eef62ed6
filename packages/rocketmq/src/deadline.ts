import { MqError } from '@mqkit/core/driver';

/**
 * Bounds a client call that has no timeout of its own (e.g. `startup()`, which waits forever for
 * the proxy's settings). The call keeps running; only the wait ends.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new MqError('TIMEOUT', `rocketmq: ${what} did not finish within ${ms} ms`)), ms);
  });
  promise.catch(() => {}); // a late failure after the deadline is not an unhandled rejection
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
