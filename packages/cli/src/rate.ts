/** `--rate 50` or `--rate 50/s`: messages per second, spaced evenly. */
import { MqError } from '@mqkit/core';
import { sleep } from '@mqkit/core/driver';

/** Parses `n` or `n/s` (n > 0); CONFIG otherwise. */
export function parseRate(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*s)?\s*$/.exec(text);
  const rate = m ? Number(m[1]) : Number.NaN;
  if (!(rate > 0) || !Number.isFinite(rate)) throw new MqError('CONFIG', `--rate: expected messages per second such as 50 or 50/s, got "${text}"`);
  return rate;
}

/** Waits before each call so that calls start at most `rate` per second (none: no wait). */
export class RateLimiter {
  readonly #intervalMs: number;
  #next = 0;

  constructor(rate: number | undefined) {
    this.#intervalMs = rate === undefined ? 0 : 1000 / rate;
  }

  async take(): Promise<void> {
    if (this.#intervalMs === 0) return;
    const now = Date.now();
    const wait = this.#next - now;
    this.#next = Math.max(now, this.#next) + this.#intervalMs;
    if (wait > 0) await sleep(wait);
  }
}
