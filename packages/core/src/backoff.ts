/** Exponential backoff with full jitter, shared by publish retries, handler retries and relays. */
export interface BackoffPolicy {
  /** Delay before the first retry, in ms. @default 200 */
  readonly initialDelayMs: number;
  /** Upper bound for one delay, in ms. @default 30000 */
  readonly maxDelayMs: number;
  /** Growth factor per attempt. @default 2 */
  readonly multiplier: number;
  /** Randomise each delay in [delay/2, delay] so that many consumers do not retry in step. @default true */
  readonly jitter: boolean;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialDelayMs: 200, maxDelayMs: 30_000, multiplier: 2, jitter: true };

/** Delay before retry number `retry` (1 = first retry). */
export function backoffDelay(policy: BackoffPolicy, retry: number, random: () => number = Math.random): number {
  const exp = policy.initialDelayMs * policy.multiplier ** Math.max(0, retry - 1);
  const capped = Math.min(policy.maxDelayMs, exp);
  if (!policy.jitter) return Math.round(capped);
  return Math.round(capped / 2 + random() * (capped / 2));
}

/** Resolves after `ms`, or rejects with the signal's reason when aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
