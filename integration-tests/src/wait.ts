/** Small polling helpers for asserting eventual outcomes against real brokers. */
import { errText, sleep, withTimeout } from './resolve.ts';

export { sleep, withTimeout, errText };

/**
 * Polls `probe` until it returns a value other than undefined/false, or throws after `timeoutMs`
 * with `what` and the last probe error in the message.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const intervalMs = opts.intervalMs ?? 200;
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
      last = '';
    } catch (e) {
      last = errText(e);
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
    await sleep(intervalMs);
  }
}

/** Resolves after an event fires (first argument), rejects after `ms`. */
export function once<T = unknown>(
  emitter: { once(ev: string, fn: (v: T) => void): unknown; removeListener(ev: string, fn: (v: T) => void): unknown },
  event: string,
  ms: number,
): Promise<T> {
  return new Promise((res, rej) => {
    const fn = (v: T) => {
      clearTimeout(t);
      res(v);
    };
    const t = setTimeout(() => {
      emitter.removeListener(event, fn);
      rej(new Error(`event "${event}" not emitted within ${ms} ms`));
    }, ms);
    emitter.once(event, fn);
  });
}
