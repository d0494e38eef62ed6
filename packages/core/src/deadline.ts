/**
 * Bounded waits, shared by core and the adapters: one place that races a promise against a timer
 * and always clears that timer, so no wait keeps the process alive or leaks a timer.
 */
import { MqError } from './errors.ts';

/**
 * `promise`, or a TIMEOUT MqError (`${what} did not finish within ${ms} ms`) once `ms` has passed.
 * For a call with no timeout of its own (e.g. a client's `startup()`): the call keeps running,
 * only the wait ends, and its late failure is not an unhandled rejection.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new MqError('TIMEOUT', `${what} did not finish within ${ms} ms`)), ms);
  });
  promise.catch(() => {});
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/**
 * Waits for `promise` at most `ms`: true if it fulfilled in time, false if the time ran out (the
 * promise keeps running). Rejects if `promise` rejects first; meant for promises that never reject
 * (an idle signal, `Promise.allSettled`).
 */
export async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}
