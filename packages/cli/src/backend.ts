/**
 * From a broker URL to the adapter package that serves its scheme, as `connect()` finds it
 * (core's ADAPTER_PACKAGES), and from there to a client (publish, subscribe) or the adapter's
 * operations ({@link DriverOps}). The CLI depends on every adapter package, so that `npx mqkit`
 * works for any URL without installing anything else.
 */
import { ADAPTER_PACKAGES, connect, MqError, type Client, type ConnectOptions } from '@mqkit/core';
import { silentLogger, type Adapter, type DriverOps, type OpsAdapter } from '@mqkit/core/driver';

interface AdapterModule {
  adapter(): Adapter;
  ops?: () => OpsAdapter;
}

/** Static imports by package name: no bare specifier built at run time (bundlers, strict layouts). */
const LOADERS: Readonly<Record<string, () => Promise<AdapterModule>>> = {
  '@mqkit/testing': () => import('@mqkit/testing'),
  '@mqkit/kafka': () => import('@mqkit/kafka'),
  '@mqkit/rabbitmq': () => import('@mqkit/rabbitmq'),
  '@mqkit/rocketmq': () => import('@mqkit/rocketmq'),
  '@mqkit/sqs': () => import('@mqkit/sqs'),
  '@mqkit/redis-streams': () => import('@mqkit/redis-streams'),
};

/** The broker URL from `--url` or `MQ_URL`; CONFIG when neither is set. */
export function brokerUrl(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  const url = flag ?? env['MQ_URL'];
  if (url === undefined || url.length === 0) throw new MqError('CONFIG', 'no broker URL: pass --url <url> or set MQ_URL (e.g. amqp://localhost:5672)');
  return url;
}

/** The URL's scheme, lower case; CONFIG for a URL without one or one no adapter serves. */
export function schemeOf(url: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (!scheme) throw new MqError('CONFIG', 'the broker URL must start with a scheme such as kafka:// or amqp://');
  if (ADAPTER_PACKAGES[scheme] === undefined) {
    throw new MqError('CONFIG', `unknown URL scheme "${scheme}:" (known: ${Object.keys(ADAPTER_PACKAGES).sort().join(', ')})`);
  }
  return scheme;
}

async function adapterModule(url: string): Promise<{ scheme: string; module: AdapterModule }> {
  const scheme = schemeOf(url);
  const pkg = ADAPTER_PACKAGES[scheme]!;
  const load = LOADERS[pkg];
  if (!load) throw new MqError('CONFIG', `the CLI does not bundle ${pkg} for "${scheme}:" URLs`);
  return { scheme, module: await load() };
}

/** A client on the URL, with the adapter passed in (nothing loaded from the working directory). */
export async function openClient(url: string, options: Omit<ConnectOptions, 'adapters'> = {}): Promise<Client> {
  const { module } = await adapterModule(url);
  return connect(url, { ...options, adapters: [module.adapter()] });
}

/** The adapter's operations on the URL; UNSUPPORTED when the adapter has none. */
export async function openOps(url: string): Promise<DriverOps> {
  const { scheme, module } = await adapterModule(url);
  if (typeof module.ops !== 'function') throw new MqError('UNSUPPORTED', `the ${scheme}: adapter has no operations (dlq, lag) yet`);
  return module.ops().create(url, {}, { logger: silentLogger });
}
