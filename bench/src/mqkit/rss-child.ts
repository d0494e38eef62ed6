/**
 * The measured half of the backlog-drain RSS rows (src/mqkit/rss.ts), run in a fresh Node process
 * (`--expose-gc`, plus the parent's `--conditions=mqkit-source`) so that no earlier row's heap
 * hides or inflates the growth. It connects one mqkit client, forces a GC, takes the RSS baseline,
 * then subscribes ONE subscriber with default options and a trivial handler to the pre-filled
 * topic, sampling RSS every 50 ms (and every 1,000 messages) until `n` messages were handled.
 * Prints one JSON line ({@link DrainResult}) on stdout.
 *
 *   node --conditions=mqkit-source --expose-gc bench/src/mqkit/rss-child.ts '<DrainSpec JSON>'
 */
import { bytesCodec, connect, type Client, type Subscription } from '@mqkit/core';
import { type RawDrain, type RawDrainTarget, rawDrains } from '../raw/drain.ts';
import type { BenchBroker, BenchEndpoints } from '../types.ts';

export interface DrainSpec {
  broker: BenchBroker;
  endpoint: BenchEndpoints[BenchBroker];
  topic: string;
  group: string;
  /** messages in the backlog: the drain ends when this many were handled */
  n: number;
  timeoutMs: number;
  clientId: string;
  /**
   * Messages drained before the second ("warmed") baseline: after this many, a forced GC and a
   * fresh RSS reading start the warmed figures, so V8's one-off heap expansion of a new process is
   * told apart from growth that keeps coming (buffering). 0 or absent: no warmed figures.
   */
  warm?: number;
  /** Who drains: mqkit (default) or the careful raw client of src/raw/drain.ts. */
  client?: 'mqkit' | 'raw';
}

export interface DrainResult {
  count: number;
  /** from subscribe() resolved (or called, if a message came first) to the n-th handler call */
  ms: number;
  subscribeMs: number;
  rssBaseMB: number;
  rssPeakMB: number;
  heapBaseMB: number;
  heapPeakMB: number;
  /** `external` (off-heap: Buffers, ArrayBuffers, native objects) at the baseline and at its peak */
  externalBaseMB: number;
  externalPeakMB: number;
  /** RSS and heapUsed right after the drain and a forced GC (subscription still open): what stays */
  rssAfterGcMB: number;
  heapAfterGcMB: number;
  /** The warmed baseline (RSS after `warm` messages and a forced GC) and the peak RSS after it; absent without `warm`. */
  rssWarmBaseMB?: number;
  rssWarmPeakMB?: number;
  samples: number;
  gc: boolean;
}

export const SAMPLE_MS = 50;
const MB = 1e6;

/** An mqkit client as the other mqkit rows of that broker open it (adapter defaults otherwise). */
export async function openClient(spec: Pick<DrainSpec, 'broker' | 'endpoint' | 'clientId'>): Promise<Client> {
  switch (spec.broker) {
    case 'kafka': {
      const { kafka } = await import('@mqkit/kafka');
      const e = spec.endpoint as BenchEndpoints['kafka'];
      return connect(`kafka://${e.brokers}?clientId=${spec.clientId}`, { adapters: [kafka()] });
    }
    case 'rabbitmq': {
      const { rabbitmq } = await import('@mqkit/rabbitmq');
      return connect((spec.endpoint as BenchEndpoints['rabbitmq']).url, { adapters: [rabbitmq()] });
    }
    case 'rocketmq': {
      const { rocketmq } = await import('@mqkit/rocketmq');
      const e = spec.endpoint as BenchEndpoints['rocketmq'];
      return connect(`rocketmq://${e.endpoints.split(';').join(',')}`, { adapters: [rocketmq()] });
    }
    case 'sqs': {
      const { sqs } = await import('@mqkit/sqs');
      const e = spec.endpoint as BenchEndpoints['sqs'];
      const params = new URLSearchParams({ region: e.region, endpoint: e.endpoint, sns: 'false' });
      return connect(`sqs://?${params.toString()}`, { adapters: [sqs()], options: { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } } });
    }
    case 'redis': {
      const { redisStreams } = await import('@mqkit/redis-streams');
      return connect((spec.endpoint as BenchEndpoints['redis']).url, { adapters: [redisStreams()] });
    }
  }
}

const gc = (globalThis as { gc?: () => void }).gc;

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One consumer under measurement: `start` resolves once it consumes (calling `onMessage` per handled message). */
interface Drainer {
  start(onMessage: () => void, fail: (e: unknown) => void): Promise<void>;
  stop(): Promise<void>;
}

async function mqkitDrainer(spec: DrainSpec): Promise<Drainer> {
  const client = await openClient(spec);
  let subscription: Subscription | undefined;
  return {
    async start(onMessage) {
      subscription = await client.subscribe(spec.topic, { group: spec.group, codec: bytesCodec, handler: onMessage });
    },
    async stop() {
      await subscription?.close({ timeoutMs: 5_000 }).catch(() => {});
      await client.close({ timeoutMs: 2_000 }).catch(() => {});
    },
  };
}

async function rawDrainer(spec: DrainSpec): Promise<Drainer> {
  const open = rawDrains[spec.broker] as ((e: unknown, t: RawDrainTarget) => Promise<RawDrain>) | undefined;
  if (!open) throw new Error(`no raw backlog drain for ${spec.broker}`);
  const raw = await open(spec.endpoint, { topic: spec.topic, group: spec.group, n: spec.n });
  return {
    async start(onMessage, fail) {
      raw.run(onMessage).catch(fail);
    },
    stop: () => raw.close().catch(() => {}),
  };
}

export async function drain(spec: DrainSpec): Promise<DrainResult> {
  const drainer = spec.client === 'raw' ? await rawDrainer(spec) : await mqkitDrainer(spec);
  try {
    await settle();
    const rssBase = process.memoryUsage.rss();
    const { heapUsed: heapBase, external: externalBase } = process.memoryUsage();
    let rssPeak = rssBase;
    let heapPeak = heapBase;
    let externalPeak = externalBase;
    let samples = 0;
    const warm = spec.warm ?? 0;
    let rssWarmBase: number | undefined;
    let rssWarmPeak = 0;
    const sample = () => {
      samples += 1;
      const m = process.memoryUsage();
      if (m.rss > rssPeak) rssPeak = m.rss;
      if (rssWarmBase !== undefined && m.rss > rssWarmPeak) rssWarmPeak = m.rss;
      if (m.heapUsed > heapPeak) heapPeak = m.heapUsed;
      if (m.external > externalPeak) externalPeak = m.external;
    };
    const sampler = setInterval(sample, SAMPLE_MS);
    let got = 0;
    let t1 = 0;
    let failure: unknown;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const timer = setTimeout(done, spec.timeoutMs);
    const t0 = performance.now();
    await drainer.start(
      () => {
        got += 1;
        if (got === warm) {
          // synchronous: the drain pauses for the GC, as it would for any major GC
          gc?.();
          rssWarmBase = process.memoryUsage.rss();
          rssWarmPeak = rssWarmBase;
        }
        if (got % 1_000 === 0) sample();
        if (got === spec.n) {
          t1 = performance.now();
          done();
        }
      },
      (e) => {
        failure = e;
        done();
      },
    );
    const tSubscribed = performance.now();
    const start = got === 0 ? tSubscribed : t0;
    await finished;
    clearTimeout(timer);
    sample();
    clearInterval(sampler);
    if (failure !== undefined) {
      const error: unknown = failure; // rethrown as caught (narrowing made it {})
      throw error;
    }
    await settle();
    const after = process.memoryUsage();
    if (got < spec.n) throw new Error(`drained only ${got}/${spec.n} in ${spec.timeoutMs / 1000} s`);
    return {
      count: got,
      ms: t1 - start,
      subscribeMs: tSubscribed - t0,
      rssBaseMB: rssBase / MB,
      rssPeakMB: rssPeak / MB,
      heapBaseMB: heapBase / MB,
      heapPeakMB: heapPeak / MB,
      externalBaseMB: externalBase / MB,
      externalPeakMB: externalPeak / MB,
      rssAfterGcMB: after.rss / MB,
      heapAfterGcMB: after.heapUsed / MB,
      samples,
      gc: gc !== undefined,
      ...(rssWarmBase === undefined ? {} : { rssWarmBaseMB: rssWarmBase / MB, rssWarmPeakMB: rssWarmPeak / MB }),
    };
  } finally {
    await drainer.stop();
  }
}

if (process.argv[1] === import.meta.filename) {
  try {
    const result = await drain(JSON.parse(process.argv[2]!) as DrainSpec);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  } catch (e) {
    console.error((e as Error).stack ?? e);
    process.exit(1);
  }
}
