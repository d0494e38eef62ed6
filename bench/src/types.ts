/** The benchmark's extension point: a scenario is one row of the result table. */

export const BENCH_BROKERS = ['kafka', 'rabbitmq', 'rocketmq', 'sqs', 'redis'] as const;
export type BenchBroker = (typeof BENCH_BROKERS)[number];

export interface BenchEndpoints {
  kafka: { brokers: string };
  rabbitmq: { url: string };
  rocketmq: { endpoints: string; namesrv?: string };
  sqs: { endpoint: string; snsEndpoint?: string; region: string };
  redis: { url: string };
}

/** What a scenario measured: `count` messages in `ms` milliseconds of its timed section. */
export interface Measurement {
  count: number;
  ms: number;
  /**
   * Other figures of the repetition, by name (e.g. `rssGrowthMb`): the table prints each as
   * median (min–max) over the repetitions; the JSON keeps every value.
   */
  metrics?: Record<string, number>;
}

export interface BenchContext<B extends BenchBroker = BenchBroker> {
  broker: B;
  endpoint: BenchEndpoints[B];
  /** messages per repetition */
  n: number;
  /** payload bytes per message */
  size: number;
  /** 0-based repetition index */
  rep: number;
  /** the same `size`-byte payload for every message */
  payload: Buffer;
  /** unique resource name for this run (topic, queue, group): `<prefix>-<run id>-<seq>` */
  name(prefix: string): string;
  /** state the broker suite's `before` hook prepared for the whole run (e.g. pre-created topics) */
  shared: Map<string, unknown>;
  log(msg: string): void;
}

/**
 * One benchmark row. `setup` (untimed) connects, creates topology and pre-fills for consume rows;
 * `run` does the timed work and returns what it measured (the scenario starts and stops its own
 * clock, so connection and group-join time stay out); `teardown` (untimed) cleans up.
 */
export interface Scenario<B extends BenchBroker = BenchBroker, S = unknown> {
  broker: B;
  /** unique per broker; shown in the table and used by other rows' `baseline` */
  name: string;
  kind: 'publish' | 'consume';
  /** who is measured: 'kafkajs', 'amqplib', …, or 'mqkit' */
  client: string;
  /** one line: what exactly this row does */
  description: string;
  /** name of the row (same broker) that this row's ratio is computed against */
  baseline?: string;
  /** messages per repetition for this row when `--n` is not given (default: the broker suite's) */
  n?: number;
  /**
   * Runs only when an `--only` text selects it (never in a plain `pnpm bench`): rows that take
   * minutes or measure something other than throughput, e.g. the backlog-drain RSS rows.
   */
  optIn?: boolean;
  setup?(ctx: BenchContext<B>): Promise<S>;
  run(ctx: BenchContext<B>, state: S): Promise<Measurement>;
  teardown?(ctx: BenchContext<B>, state: S): Promise<void>;
}

/** Per-broker hooks and defaults. */
export interface BrokerSuite<B extends BenchBroker = BenchBroker> {
  broker: B;
  defaults: { n: number; size: number };
  /** once before any scenario of this broker (all reps): e.g. create RocketMQ typed topics */
  before?(ctx: Omit<BenchContext<B>, 'rep'> & { reps: number }): Promise<void>;
  after?(ctx: Omit<BenchContext<B>, 'rep'>): Promise<void>;
}

/** Identity helper that keeps a scenario's state type checked and erases it for the registry. */
export function defineScenario<B extends BenchBroker, S>(s: Scenario<B, S>): Scenario<B, unknown> {
  return s;
}

export const now = (): number => performance.now();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Deferred<T> {
  promise: Promise<T>;
  // Properties, not methods: they are passed around unbound (`ch.on('error', done.reject)`).
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T>(items: number, limit: number, fn: (i: number) => Promise<T>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items) }, worker));
}
