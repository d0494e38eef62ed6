import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import { z } from 'zod';
import { Client } from './client.ts';
import { configError, parseOptions, redactUrl, unlimitedInt } from './config.ts';
import type { Adapter } from './driver/driver.ts';
import { MqError } from './errors.ts';
import { silentLogger, type Logger } from './logger.ts';
import { DEFAULT_PUBLISH_POLICY, type PublishPolicy } from './publish.ts';
import { Telemetry } from './telemetry.ts';
import { requireTopology, toTopologySpec, topologyModeSchema, verifyTopology, type TopicDeclaration, type TopologyMode } from './topology.ts';

/** Options of {@link connect}. */
export interface ConnectOptions {
  /**
   * Adapters to choose from by URL scheme, e.g. `[kafka(), rabbitmq()]`. A scheme with no adapter
   * here is loaded from its package (`@mqkit/kafka`, …) when that is installed.
   */
  adapters?: readonly Adapter[];
  /** Adapter-specific options; they override the URL's query parameters. */
  options?: Readonly<Record<string, unknown>>;
  /** pino-compatible logger. @default silent */
  logger?: Logger;
  /** OpenTelemetry meter provider. @default the global one (no-op without an SDK) */
  meterProvider?: MeterProvider;
  /** OpenTelemetry tracer provider. @default the global one (no-op without an SDK) */
  tracerProvider?: TracerProvider;
  /** Reliable-send policy: each publish's deadline, the retry backoff, and the pending bounds. */
  publish?: PublishConnectOptions;
  /**
   * What mqkit does about missing topics and groups (see {@link TopologyMode}): `create` declares
   * them at `subscribe()` (and `topics` at connect), `verify` fails fast with NOT_FOUND naming
   * what is missing and how to create it (recommended in production), `none` leaves it to the
   * adapter's own options. @default 'create' for `memory://`, else 'none' (the behaviour before
   * this option; see the README for why the default did not become 'verify')
   */
  topology?: TopologyMode;
  /**
   * Topics (with their groups and dead-letter topics) to declare (`topology: 'create'`) or check
   * (`'verify'`) at connect, so that a missing one fails the connect rather than the first use.
   */
  topics?: readonly TopicDeclaration[];
}

/**
 * `connect({ publish })`: validated by a strict schema (unknown keys are a CONFIG error).
 * - `timeoutMs`: hard deadline of each publish (retries included); TIMEOUT at the latest then. @default 30000
 * - `initialDelayMs`, `maxDelayMs`: backoff between retries. @default 100, 2000
 * - `maxPending`, `maxPendingBytes`: most messages / encoded payload bytes pending at once (may be
 *   `Infinity`); beyond them publish() waits for room up to its deadline. @default 10000, 64 MiB
 */
export type PublishConnectOptions = z.input<typeof publishSchema>;

/** {@link connect} options with the URL inside. */
export interface ConnectConfig extends ConnectOptions {
  /** Broker URL: `memory://`, `kafka://…`, `amqp://…`, `rocketmq://…`, `sqs://…`. */
  url: string;
}

/** Packages that serve the well-known schemes, loaded on demand when not passed in. */
export const ADAPTER_PACKAGES: Readonly<Record<string, string>> = {
  memory: '@mqkit/testing',
  kafka: '@mqkit/kafka',
  amqp: '@mqkit/rabbitmq',
  amqps: '@mqkit/rabbitmq',
  rocketmq: '@mqkit/rocketmq',
  sqs: '@mqkit/sqs',
  redis: '@mqkit/redis-streams',
  rediss: '@mqkit/redis-streams',
};

const publishSchema = z
  .object({
    timeoutMs: z.number().int().positive().optional(),
    initialDelayMs: z.number().int().positive().optional(),
    maxDelayMs: z.number().int().positive().optional(),
    maxPending: unlimitedInt(1).optional(),
    maxPendingBytes: unlimitedInt(1).optional(),
  })
  .strict();

/**
 * Connects to the broker named by the URL's scheme, e.g.
 * `await connect(process.env.MQ_URL ?? 'memory://', { adapters: [kafka()] })`.
 * Throws {@link MqError} CONFIG for an unknown scheme, a missing adapter package or a bad option;
 * messages never contain secrets from the URL.
 */
export async function connect(target: string | ConnectConfig, options: ConnectOptions = {}): Promise<Client> {
  const config: ConnectConfig = typeof target === 'string' ? { ...options, url: target } : { ...options, ...target };
  const { url } = config;
  if (typeof url !== 'string' || url.length === 0) throw configError('connect: a broker URL is required (e.g. memory://)');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (!scheme) throw configError('connect: the URL must start with a scheme such as kafka:// or amqp://', url);
  const publish = parseOptions(publishSchema, config.publish ?? {}, 'connect.publish');
  const defaults = DEFAULT_PUBLISH_POLICY;
  const publishPolicy: PublishPolicy = {
    timeoutMs: publish.timeoutMs ?? defaults.timeoutMs,
    backoff: {
      ...defaults.backoff,
      initialDelayMs: publish.initialDelayMs ?? defaults.backoff.initialDelayMs,
      maxDelayMs: publish.maxDelayMs ?? defaults.backoff.maxDelayMs,
    },
    maxPending: publish.maxPending ?? defaults.maxPending,
    maxPendingBytes: publish.maxPendingBytes ?? defaults.maxPendingBytes,
  };
  const topology = parseOptions(topologyModeSchema.optional(), config.topology, 'connect.topology') ?? (scheme === 'memory' ? 'create' : 'none');
  const topics = config.topics ?? [];
  if (!Array.isArray(topics)) throw configError('connect.topics: must be an array of topic declarations');
  if (topics.length > 0 && topology === 'none') throw configError("connect.topics: needs topology 'create' (declare them) or 'verify' (check them)");
  const adapter = await findAdapter(scheme, config.adapters ?? [], url);
  const logger = config.logger ?? silentLogger;
  const driver = await adapter.create(url, config.options ?? {}, { logger });
  try {
    // Validated before anything is created: a typo in the last declaration creates nothing.
    const specs = topics.map((t, i) => toTopologySpec(driver, t, `connect.topics.${i}`));
    for (const spec of specs) {
      if (topology === 'create') await requireTopology(driver).declare(spec);
      else await verifyTopology(driver, spec);
    }
  } catch (err) {
    await driver.close().catch(() => {});
    throw err;
  }
  logger.info({ adapter: driver.name, url: redactUrl(url), topology }, 'mqkit connected');
  const telemetry = new Telemetry(driver.name, { meterProvider: config.meterProvider, tracerProvider: config.tracerProvider, sendSystem: driver.sendSystem });
  return new Client(driver, telemetry, logger, publishPolicy, topology);
}

async function findAdapter(scheme: string, adapters: readonly Adapter[], url: string): Promise<Adapter> {
  const given = adapters.find((a) => a.schemes.includes(scheme));
  if (given) return given;
  const pkg = ADAPTER_PACKAGES[scheme];
  if (!pkg) {
    const known = [...new Set([...adapters.flatMap((a) => a.schemes), ...Object.keys(ADAPTER_PACKAGES)])].sort().join(', ');
    throw configError(`connect: unknown URL scheme "${scheme}:" (known: ${known})`, url);
  }
  return loadAdapterPackage(scheme, pkg, url);
}

/** @internal loads `pkg` and takes its `adapter()` factory; CONFIG error naming the package if absent. */
export async function loadAdapterPackage(scheme: string, pkg: string, url: string): Promise<Adapter> {
  let mod: { adapter?: () => Adapter };
  try {
    mod = (await importAdapterPackage(pkg)) as { adapter?: () => Adapter };
  } catch (err) {
    throw configError(`connect: the ${scheme}: adapter is not installed: add ${pkg} to your dependencies, or pass it in adapters`, url, err);
  }
  if (typeof mod.adapter !== 'function') {
    throw new MqError('CONFIG', `${pkg} does not export an adapter() factory`);
  }
  return mod.adapter();
}

/**
 * Loads an adapter package: first as a dependency visible from here (flat node_modules), then
 * from the application's own folder, since strict layouts (pnpm) show core only its own deps.
 */
async function importAdapterPackage(pkg: string): Promise<unknown> {
  try {
    return await import(pkg);
  } catch (first) {
    let resolved: string;
    try {
      resolved = createRequire(path.join(process.cwd(), 'package.json')).resolve(pkg);
    } catch {
      throw first;
    }
    return import(pathToFileURL(resolved).href);
  }
}
