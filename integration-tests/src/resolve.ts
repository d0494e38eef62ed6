/**
 * Endpoint resolution and reachability checks for the real brokers.
 *
 * Order, per broker:
 *   1. explicit environment variables (MQKIT_KAFKA_BROKERS, MQKIT_AMQP_URL, MQKIT_ROCKETMQ_ENDPOINTS,
 *      MQKIT_SQS_ENDPOINT + MQKIT_SNS_ENDPOINT, DATABASE_URL, REDIS_URL);
 *   2. testcontainers, when a Docker engine is reachable (MQKIT_TESTCONTAINERS=0 disables, =1 insists);
 *   3. the native brokers' `<repo>/.mqkit/endpoints.json` written by `pnpm brokers up`
 *      (MQKIT_ENDPOINTS_FILE overrides the path).
 * A requested broker that none of these yields, or that does not answer, is an error naming the
 * broker and everything that was tried: integration suites never skip.
 *
 * This module imports nothing from vitest, so scripts (scripts/test-integration.mjs) can use it too.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as netConnect, type Socket } from 'node:net';
import {
  BROKERS,
  type BrokerEndpoints,
  type BrokerName,
  type EndpointSource,
  type ResolvedBroker,
  kafkaBrokerList,
} from './brokers.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function endpointsFilePath(): string {
  return process.env.MQKIT_ENDPOINTS_FILE ?? join(REPO_ROOT, '.mqkit', 'endpoints.json');
}

const ENV_VARS: Record<BrokerName, string[]> = {
  kafka: ['MQKIT_KAFKA_BROKERS'],
  rabbitmq: ['MQKIT_AMQP_URL'],
  rocketmq: ['MQKIT_ROCKETMQ_ENDPOINTS'],
  sqs: ['MQKIT_SQS_ENDPOINT', 'MQKIT_SNS_ENDPOINT'],
  postgres: ['DATABASE_URL'],
  redis: ['REDIS_URL'],
};

const env = (k: string): string | undefined => {
  const v = process.env[k]?.trim();
  return v ? v : undefined;
};

const awsRegion = (): string => env('MQKIT_AWS_REGION') ?? env('AWS_REGION') ?? 'us-east-1';

/** The complete endpoint from env vars, or the parts that were set (sqs has two URLs). */
function fromEnv<N extends BrokerName>(name: N): { full?: BrokerEndpoints[N]; partial?: Partial<BrokerEndpoints[N]> } {
  type E = BrokerEndpoints[N];
  switch (name) {
    case 'kafka': {
      const brokers = env('MQKIT_KAFKA_BROKERS');
      return brokers ? { full: { brokers } as E } : {};
    }
    case 'rabbitmq': {
      const url = env('MQKIT_AMQP_URL');
      return url ? { full: { url } as E } : {};
    }
    case 'rocketmq': {
      const endpoints = env('MQKIT_ROCKETMQ_ENDPOINTS');
      const namesrv = env('MQKIT_ROCKETMQ_NAMESRV');
      return endpoints ? { full: { endpoints, ...(namesrv ? { namesrv } : {}) } as E } : {};
    }
    case 'sqs': {
      const endpoint = env('MQKIT_SQS_ENDPOINT');
      const snsEndpoint = env('MQKIT_SNS_ENDPOINT');
      if (endpoint && snsEndpoint) return { full: { endpoint, snsEndpoint, region: awsRegion() } as E };
      if (endpoint || snsEndpoint) {
        return { partial: { ...(endpoint ? { endpoint } : {}), ...(snsEndpoint ? { snsEndpoint } : {}) } as Partial<E> };
      }
      return {};
    }
    case 'postgres': {
      const url = env('DATABASE_URL');
      return url ? { full: { url } as E } : {};
    }
    case 'redis': {
      const url = env('REDIS_URL');
      return url ? { full: { url } as E } : {};
    }
  }
  return {};
}

export interface NativeFile {
  path: string;
  data?: Partial<BrokerEndpoints>;
  error?: string;
}

export function readNativeEndpoints(): NativeFile {
  const path = endpointsFilePath();
  if (!existsSync(path)) return { path, error: `${path} does not exist (run \`pnpm brokers up\`)` };
  try {
    return { path, data: JSON.parse(readFileSync(path, 'utf8')) as Partial<BrokerEndpoints> };
  } catch (e) {
    return { path, error: `${path} is not valid JSON: ${(e as Error).message}` };
  }
}

function validNative<N extends BrokerName>(name: N, v: unknown): v is BrokerEndpoints[N] {
  if (!v || typeof v !== 'object') return false;
  const o = v as Record<string, unknown>;
  const str = (k: string) => typeof o[k] === 'string' && (o[k]).length > 0;
  switch (name) {
    case 'kafka':
      return str('brokers');
    case 'rocketmq':
      return str('endpoints');
    case 'sqs':
      return str('endpoint') && str('snsEndpoint');
    default:
      return str('url');
  }
}

export type DockerStatus = { ok: true; host: string } | { ok: false; reason: string };

let dockerStatus: Promise<DockerStatus> | undefined;

/** Is a Docker engine reachable for testcontainers? Cheap when there is obviously none. */
export function detectDocker(): Promise<DockerStatus> {
  dockerStatus ??= (async (): Promise<DockerStatus> => {
    const flag = env('MQKIT_TESTCONTAINERS');
    if (flag === '0' || flag === 'false') return { ok: false, reason: 'testcontainers disabled by MQKIT_TESTCONTAINERS=0' };
    const sockets = [
      '/var/run/docker.sock',
      join(homedir(), '.docker', 'run', 'docker.sock'),
      ...(process.env.XDG_RUNTIME_DIR ? [join(process.env.XDG_RUNTIME_DIR, 'docker.sock')] : []),
    ];
    const hints = env('DOCKER_HOST') || existsSync(join(homedir(), '.testcontainers.properties')) || sockets.some((s) => existsSync(s));
    if (!hints && flag !== '1' && flag !== 'true') {
      return { ok: false, reason: `no Docker engine (DOCKER_HOST unset, none of ${sockets.join(', ')} exists)` };
    }
    try {
      const tc = await import('testcontainers');
      const client = await withTimeout(tc.getContainerRuntimeClient(), 20_000, 'connecting to the Docker engine');
      return { ok: true, host: client.info.containerRuntime.host };
    } catch (e) {
      return { ok: false, reason: `Docker engine not reachable: ${errText(e)}` };
    }
  })();
  return dockerStatus;
}

/** A broker that will come from testcontainers (started by the vitest globalSetup). */
export interface PendingContainer {
  name: BrokerName;
  source: 'testcontainers';
  tried: string[];
  /** Explicit env parts that override the container's (sqs only). */
  overrides?: Record<string, string>;
}

export type Resolution = ResolvedBroker | PendingContainer;

export class BrokerConfigError extends Error {
  override name = 'BrokerConfigError';
}

/**
 * Decide where each requested broker comes from, without starting anything.
 * Throws one error listing every broker that has no endpoint at all.
 */
export async function planEndpoints(names: readonly BrokerName[]): Promise<Resolution[]> {
  const out: Resolution[] = [];
  const problems: string[] = [];
  let native: NativeFile | undefined;
  for (const name of names) {
    const tried: string[] = [];
    const e = fromEnv(name);
    if (e.full) {
      tried.push(`env ${ENV_VARS[name].join(' + ')}`);
      out.push({ name, endpoint: e.full, source: 'env', tried });
      continue;
    }
    tried.push(
      e.partial
        ? `env ${ENV_VARS[name].join(' + ')} (only ${Object.keys(e.partial).join(', ')} set)`
        : `env ${ENV_VARS[name].join(' + ')} unset`,
    );
    const docker = await detectDocker();
    if (docker.ok) {
      tried.push(`testcontainers on ${docker.host}`);
      out.push({
        name,
        source: 'testcontainers',
        tried,
        ...(e.partial ? { overrides: e.partial } : {}),
      });
      continue;
    }
    tried.push(docker.reason);
    native ??= readNativeEndpoints();
    if (native.error) {
      tried.push(native.error);
    } else {
      const v = native.data?.[name];
      if (validNative(name, v)) {
        tried.push(`native brokers file ${native.path}`);
        const endpoint = { ...(v as object), ...(e.partial ?? {}) } as BrokerEndpoints[typeof name];
        if (name === 'sqs') (endpoint as BrokerEndpoints['sqs']).region ||= awsRegion();
        out.push({ name, endpoint, source: 'native', tried });
        continue;
      }
      tried.push(`${native.path} has no usable "${name}" entry (run \`pnpm brokers up ${name}\`)`);
    }
    problems.push(`  - ${name}: no endpoint. Tried: ${tried.join('; ')}`);
  }
  if (problems.length) {
    throw new BrokerConfigError(
      `mqkit integration: requested broker(s) have no endpoint:\n${problems.join('\n')}\n` +
        'Start them with `pnpm brokers up <name>`, or set the environment variables above.',
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reachability

export interface HostPort {
  host: string;
  port: number;
}

function hostPort(s: string, defaultPort: number): HostPort {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(s.trim());
  if (!m) throw new BrokerConfigError(`cannot parse host:port from "${s}"`);
  return { host: m[1]!, port: m[2] ? Number(m[2]) : defaultPort };
}

function urlHostPort(u: string, defaultPort: number): HostPort {
  const url = new URL(u);
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port ? Number(url.port) : defaultPort };
}

/** The TCP addresses a broker's endpoint names, with a label for messages. */
export function addressesOf(r: ResolvedBroker): Array<HostPort & { label: string }> {
  switch (r.name) {
    case 'kafka':
      return kafkaBrokerList(r.endpoint as BrokerEndpoints['kafka']).map((b) => ({ ...hostPort(b, 9092), label: b }));
    case 'rabbitmq': {
      const u = (r.endpoint as BrokerEndpoints['rabbitmq']).url;
      return [{ ...urlHostPort(u, u.startsWith('amqps:') ? 5671 : 5672), label: redact(u) }];
    }
    case 'rocketmq': {
      const e = r.endpoint as BrokerEndpoints['rocketmq'];
      return e.endpoints.split(/[;,]/).filter(Boolean).map((x) => ({ ...hostPort(x, 8081), label: `${x} (gRPC proxy)` }));
    }
    case 'sqs': {
      const e = r.endpoint as BrokerEndpoints['sqs'];
      return [
        { ...urlHostPort(e.endpoint, 80), label: `${e.endpoint} (SQS)` },
        { ...urlHostPort(e.snsEndpoint, 80), label: `${e.snsEndpoint} (SNS + SQS)` },
      ];
    }
    case 'postgres': {
      const u = (r.endpoint as BrokerEndpoints['postgres']).url;
      return [{ ...urlHostPort(u, 5432), label: redact(u) }];
    }
    case 'redis': {
      const u = (r.endpoint as BrokerEndpoints['redis']).url;
      return [{ ...urlHostPort(u, 6379), label: redact(u) }];
    }
  }
  return [];
}

function redact(u: string): string {
  try {
    const url = new URL(u);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return u;
  }
}

function tcpOnce(a: HostPort, timeoutMs: number): Promise<Socket> {
  return new Promise((res, rej) => {
    const s = netConnect({ host: a.host, port: a.port });
    const t = setTimeout(() => {
      s.destroy();
      rej(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      res(s);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      s.destroy();
      rej(e);
    });
  });
}

/** Writes `out`, reads until `expect` matches (protocol-level check over a plain socket). */
function exchange(s: Socket, out: string | Buffer, expect: (b: Buffer) => boolean, timeoutMs: number): Promise<void> {
  return new Promise((res, rej) => {
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => done(new Error(`no valid answer within ${timeoutMs} ms (got ${JSON.stringify(buf.toString('latin1').slice(0, 60))})`)), timeoutMs);
    const done = (e?: Error) => {
      clearTimeout(t);
      s.removeAllListeners('data');
      s.destroy();
      if (e) rej(e);
      else res();
    };
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (expect(buf)) done();
    });
    s.once('error', (e) => done(e));
    s.once('close', () => done(new Error(`connection closed (got ${JSON.stringify(buf.toString('latin1').slice(0, 60))})`)));
    s.write(out);
  });
}

async function probeAddress(name: BrokerName, a: HostPort & { label: string }, timeoutMs: number): Promise<void> {
  const s = await tcpOnce(a, timeoutMs);
  switch (name) {
    case 'rabbitmq':
      // AMQP 0-9-1 protocol header; the server answers with connection.start (frame type 1).
      return exchange(s, Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'), (b) => b.length >= 7 && b[0] === 1, timeoutMs);
    case 'redis':
      // Inline PING: "+PONG" or "-NOAUTH ..." both prove a Redis server is answering.
      return exchange(s, 'PING\r\n', (b) => /^[+-].*\r\n/.test(b.toString('latin1')), timeoutMs);
    case 'postgres':
      // SSLRequest: a PostgreSQL server answers with a single 'S' or 'N'.
      return exchange(s, Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]), (b) => b[0] === 0x53 || b[0] === 0x4e, timeoutMs);
    case 'sqs':
      // Any HTTP response proves an HTTP server is there (emulator health varies by product).
      return exchange(s, `GET / HTTP/1.1\r\nHost: ${a.host}:${a.port}\r\nConnection: close\r\n\r\n`, (b) => b.toString('latin1').startsWith('HTTP/1.'), timeoutMs);
    default:
      s.destroy();
  }
}

export class BrokerUnreachableError extends Error {
  override name = 'BrokerUnreachableError';
}

/**
 * Checks every address of every broker, retrying for up to `waitMs` (brokers may still be
 * starting). Throws one error naming each unreachable broker, its address and what was tried.
 */
export async function checkReachable(
  brokers: readonly ResolvedBroker[],
  opts: { waitMs?: number; attemptTimeoutMs?: number } = {},
): Promise<void> {
  const waitMs = opts.waitMs ?? Number(env('MQKIT_PROBE_WAIT_MS') ?? 15_000);
  const attemptTimeoutMs = opts.attemptTimeoutMs ?? 3_000;
  const failures = await Promise.all(
    brokers.map(async (r) => {
      const bad: string[] = [];
      for (const a of addressesOf(r)) {
        const deadline = Date.now() + waitMs;
        let last: string;
        for (;;) {
          try {
            await probeAddress(r.name, a, attemptTimeoutMs);
            last = '';
            break;
          } catch (e) {
            last = errText(e);
            if (Date.now() + 500 > deadline) break;
            await sleep(500);
          }
        }
        if (last) bad.push(`${a.label}: ${last}`);
      }
      return bad.length
        ? `  - ${r.name} (from ${describeSource(r.source)}) unreachable: ${bad.join('; ')}\n      tried: ${r.tried.join('; ')}`
        : undefined;
    }),
  );
  const msgs = failures.filter((x): x is string => !!x);
  if (msgs.length) {
    throw new BrokerUnreachableError(
      `mqkit integration: requested broker(s) unreachable (waited up to ${waitMs} ms each):\n${msgs.join('\n')}\n` +
        'Start native brokers with `pnpm brokers up <name>` (see `pnpm brokers status`), or point the MQKIT_* variables at running ones.',
    );
  }
}

export function describeSource(s: EndpointSource): string {
  return s === 'env' ? 'environment variables' : s === 'native' ? `native brokers (${endpointsFilePath()})` : 'testcontainers';
}

/** Requested broker names: MQKIT_INTEGRATION_BROKERS (comma/space separated), validated. */
export function brokersFromEnv(): BrokerName[] | undefined {
  const raw = env('MQKIT_INTEGRATION_BROKERS');
  if (!raw) return undefined;
  const names = raw.split(/[\s,]+/).filter(Boolean);
  const bad = names.filter((n) => !(BROKERS as readonly string[]).includes(n));
  if (bad.length) throw new BrokerConfigError(`MQKIT_INTEGRATION_BROKERS names unknown broker(s) ${bad.join(', ')}; known: ${BROKERS.join(', ')}`);
  return [...new Set(names)] as BrokerName[];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms);
    }),
  ]);
}

export function errText(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length) return e.errors.map(errText).join(' | ');
  if (e instanceof Error) {
    const code = (e as { code?: string | number }).code;
    return `${e.message || e.name}${code && !String(e.message).includes(String(code)) ? ` (${String(code)})` : ''}`;
  }
  return String(e);
}
