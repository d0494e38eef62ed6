import type { Client, Delivery, RetryPolicy, SubscribeOptions, Subscription } from '@mqkit/core';
import { DEFAULT_TIMING, uniqueName, type ConformanceHarness, type ConformanceTiming, type TopicNeeds } from './harness.ts';

/** Polls `check` until it returns true or `timeoutMs` passes, then fails with `what`. */
export async function eventually(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await pause(20);
  }
}

export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Records deliveries for assertions. */
export class Recorder<T = unknown> {
  readonly deliveries: Array<Delivery<T>> = [];
  readonly receivedAt: number[] = [];

  /** Takes any delivery: the recorder's `T` is what the test expects the payload to be. */
  record(delivery: Delivery<unknown>): void {
    this.deliveries.push(delivery as Delivery<T>);
    this.receivedAt.push(Date.now());
  }

  ids(): string[] {
    return this.deliveries.map((d) => d.id);
  }

  uniqueIds(): Set<string> {
    return new Set(this.ids());
  }

  count(id: string): number {
    return this.deliveries.filter((d) => d.id === id).length;
  }

  /** Waits (as {@link eventually}) until at least `count` deliveries are recorded. */
  waitFor(what: string, timeoutMs: number, count = 1): Promise<void> {
    return eventually(what, timeoutMs, () => this.deliveries.length >= count);
  }
}

/** Per-scenario state: clients and subscriptions opened, closed afterwards whatever happens. */
export class ScenarioContext {
  readonly harness: ConformanceHarness;
  readonly timing: ConformanceTiming;
  readonly #clients: Client[] = [];

  constructor(harness: ConformanceHarness) {
    this.harness = harness;
    this.timing = { ...DEFAULT_TIMING, ...harness.timing };
  }

  async client(): Promise<Client> {
    const client = await this.harness.connect();
    this.#clients.push(client);
    return client;
  }

  async topic(needs: TopicNeeds = {}): Promise<string> {
    return this.harness.topic ? this.harness.topic(needs) : uniqueName();
  }

  group(): string {
    return uniqueName('g');
  }

  /** A new client and a new topic (in that order), the opening of most scenarios. */
  async clientAndTopic(needs: TopicNeeds = {}): Promise<{ client: Client; topic: string }> {
    const client = await this.client();
    return { client, topic: await this.topic(needs) };
  }

  /** Subscribes a {@link Recorder} to `topic` (in a new group unless `options.group` names one). */
  async recorder<T = unknown>(client: Client, topic: string, options: Partial<Omit<SubscribeOptions<T>, 'handler'>> = {}): Promise<Recorder<T>> {
    const got = new Recorder<T>();
    await this.subscribe<T>(client, topic, { ...options, group: options.group ?? this.group(), handler: (d) => got.record(d) });
    return got;
  }

  /**
   * Subscribes a handler under `retry` that records the attempt of each delivery, then throws an
   * Error with the message `failure(n)` returns for the n-th call (succeeds where it returns undefined).
   * Returns the attempts recorded, in order.
   */
  async recordAttempts(client: Client, topic: string, retry: Partial<RetryPolicy>, failure: (call: number) => string | undefined): Promise<number[]> {
    const attempts: number[] = [];
    await this.subscribe(client, topic, {
      group: this.group(),
      retry,
      handler: (d) => {
        attempts.push(d.attempt);
        const message = failure(attempts.length);
        if (message !== undefined) throw new Error(message);
      },
    });
    return attempts;
  }

  /** A {@link Recorder} of what reaches `topic`'s default dead-letter topic, `${topic}-dlq`. */
  deadLetters<T = unknown>(client: Client, topic: string, options: Partial<Omit<SubscribeOptions<T>, 'handler'>> = {}): Promise<Recorder<T>> {
    return this.recorder<T>(client, `${topic}-dlq`, options);
  }

  /** Subscribes with the harness's adapter options merged in. */
  subscribe<T>(client: Client, topic: string, options: SubscribeOptions<T>): Promise<Subscription> {
    return client.subscribe<T>(topic, { ...options, options: { ...this.harness.subscribeOptions, ...options.options } });
  }

  async cleanup(): Promise<void> {
    await Promise.allSettled(this.#clients.map((c) => c.close({ timeoutMs: 0 })));
  }
}
