/**
 * Broker endpoints for the benchmark: the same MQKIT_* variables as the integration suites, else the
 * native brokers' `<repo>/.mqkit/endpoints.json` (`pnpm brokers up`). Each is checked with a TCP
 * connect; an unreachable broker is an error naming what was tried (no silent skipping).
 */
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import type { BenchBroker, BenchEndpoints } from './types.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');

const env = (k: string) => process.env[k]?.trim() || undefined;

export function resolveEndpoint<B extends BenchBroker>(b: B): { endpoint: BenchEndpoints[B]; source: string } {
  const region = env('MQKIT_AWS_REGION') ?? env('AWS_REGION') ?? 'us-east-1';
  const fromEnv: { [K in BenchBroker]: () => BenchEndpoints[K] | undefined } = {
    kafka: () => (env('MQKIT_KAFKA_BROKERS') ? { brokers: env('MQKIT_KAFKA_BROKERS')! } : undefined),
    rabbitmq: () => (env('MQKIT_AMQP_URL') ? { url: env('MQKIT_AMQP_URL')! } : undefined),
    rocketmq: () => (env('MQKIT_ROCKETMQ_ENDPOINTS') ? { endpoints: env('MQKIT_ROCKETMQ_ENDPOINTS')! } : undefined),
    sqs: () => (env('MQKIT_SQS_ENDPOINT') ? { endpoint: env('MQKIT_SQS_ENDPOINT')!, region } : undefined),
    // the integration suites' variable for the Redis the brokers script runs
    redis: () => (env('REDIS_URL') ? { url: env('REDIS_URL')! } : undefined),
  };
  const vars = { kafka: 'MQKIT_KAFKA_BROKERS', rabbitmq: 'MQKIT_AMQP_URL', rocketmq: 'MQKIT_ROCKETMQ_ENDPOINTS', sqs: 'MQKIT_SQS_ENDPOINT', redis: 'REDIS_URL' }[b];
  const e = fromEnv[b]();
  if (e) return { endpoint: e, source: `env ${vars}` };
  const file = env('MQKIT_ENDPOINTS_FILE') ?? join(REPO_ROOT, '.mqkit', 'endpoints.json');
  if (!existsSync(file)) throw new Error(`bench: no endpoint for ${b}: ${vars} unset and ${file} missing (run \`pnpm brokers up ${b}\`)`);
  const data = JSON.parse(readFileSync(file, 'utf8')) as Partial<BenchEndpoints>;
  const v = data[b];
  if (!v) throw new Error(`bench: no endpoint for ${b}: ${vars} unset and ${file} has no "${b}" entry (run \`pnpm brokers up ${b}\`)`);
  if (b === 'sqs') (v as BenchEndpoints['sqs']).region ||= region;
  return { endpoint: v, source: file };
}

function addressOf(b: BenchBroker, e: BenchEndpoints[BenchBroker]): { host: string; port: number } {
  const hp = (s: string, d: number) => {
    const [host, port] = s.split(':');
    return { host: host!, port: port ? Number(port) : d };
  };
  const url = (u: string, d: number) => {
    const x = new URL(u);
    return { host: x.hostname, port: x.port ? Number(x.port) : d };
  };
  switch (b) {
    case 'kafka':
      return hp((e as BenchEndpoints['kafka']).brokers.split(',')[0]!.trim(), 9092);
    case 'rabbitmq':
      return url((e as BenchEndpoints['rabbitmq']).url, 5672);
    case 'rocketmq':
      return hp((e as BenchEndpoints['rocketmq']).endpoints.split(/[;,]/)[0]!, 8081);
    case 'sqs':
      return url((e as BenchEndpoints['sqs']).endpoint, 80);
    case 'redis':
      return url((e as BenchEndpoints['redis']).url, 6379);
  }
}

export async function checkReachable(b: BenchBroker, e: BenchEndpoints[BenchBroker], source: string): Promise<void> {
  const a = addressOf(b, e);
  await new Promise<void>((res, rej) => {
    const s = connect(a);
    const t = setTimeout(() => {
      s.destroy();
      rej(new Error('timed out'));
    }, 3_000);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      res();
    });
    s.once('error', (err) => {
      clearTimeout(t);
      rej(err);
    });
  }).catch((err: Error) => {
    throw new Error(`bench: ${b} unreachable at ${a.host}:${a.port} (from ${source}): ${err.message}. Start it with \`pnpm brokers up ${b}\`.`);
  });
}
