/**
 * Connection URL and option parsing for the RabbitMQ adapter: one zod schema gives both the
 * TypeScript type and the runtime check; URL query parameters merge under explicit options.
 */
import { z } from 'zod';
import { configError, parseOptions, parseUrlOptions, redactUrl } from '@mqkit/core/driver';

const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);

/** Default of the `maxMessageBytes` option. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Default of the `maxBatchSize` option. */
export const DEFAULT_MAX_BATCH_SIZE = 1000;

const optionsSchema = z
  .object({
    /**
     * Declare exchanges and queues (idempotently) before use. Set `false` when the topology is
     * managed elsewhere (definitions file, Terraform): mqkit then only publishes and consumes.
     * @default true
     */
    declare: bool.default(true),
    /**
     * `x-delivery-limit` of each new group queue: a native poison guard on top of mqkit's own count.
     * Unlimited by default: mqkit counts attempts from the queue's `x-delivery-count` and
     * dead-letters after `retry.maxAttempts` itself, also a message that crashes its consumer
     * every time. A finite value must be at least every subscription's `retry.maxAttempts`
     * (otherwise `subscribe()` fails with CONFIG), since RabbitMQ must never dead-letter first.
     * `unlimited` (or `Infinity`) in a URL.
     * @default Infinity
     */
    deliveryLimit: z
      .union([
        z.literal(Number.POSITIVE_INFINITY),
        z.enum(['unlimited', 'Infinity']).transform(() => Number.POSITIVE_INFINITY),
        z.coerce.number().int().min(1).max(1_000_000_000),
      ])
      .default(Number.POSITIVE_INFINITY),
    /**
     * Deprecated: delay queues are always quorum queues with at-least-once dead-lettering (a
     * classic one could drop a confirmed delayed message). Only `quorum` is accepted.
     */
    delayQueueType: z.literal('quorum').optional(),
    /**
     * Keep every dead letter in a durable quorum queue named after the dead-letter topic, bound to
     * its exchange, so that dead-lettering is never unroutable and no dead letter is dropped.
     * @default true
     */
    deadLetterQueue: bool.default(true),
    /** Largest message accepted (body + key + headers), in bytes. @default 16 MiB */
    maxMessageBytes: z.coerce.number().int().min(1024).max(128 * 1024 * 1024).default(DEFAULT_MAX_MESSAGE_BYTES),
    /** Messages per publish batch handed to the confirm channel at once. @default 1000 */
    maxBatchSize: z.coerce.number().int().min(1).max(100_000).default(DEFAULT_MAX_BATCH_SIZE),
    /**
     * How long a publish waits for RabbitMQ's confirm before it fails TIMEOUT (retryable, outcome
     * unknown), e.g. while the broker blocks publishers on a memory or disk alarm.
     * @default 30000
     */
    confirmTimeoutMs: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
    /** Heartbeat interval in seconds (`0` disables). @default 10 */
    heartbeat: z.coerce.number().int().min(0).max(3600).default(10),
    /** Time allowed to open the TCP (or TLS) connection, in ms. @default 10000 */
    connectTimeoutMs: z.coerce.number().int().min(100).max(300_000).default(10_000),
    /** First reconnect delay after a lost connection, in ms. @default 100 */
    reconnectInitialDelayMs: z.coerce.number().int().min(1).max(60_000).default(100),
    /** Longest reconnect delay, in ms. Reconnecting never gives up until `close()`. @default 5000 */
    reconnectMaxDelayMs: z.coerce.number().int().min(1).max(300_000).default(5_000),
    /**
     * The management plugin's HTTP API, used only by the adapter's operations (`mqkit lag`, `mqkit
     * dlq ls` without a topic): unacked counts and queue listing, which AMQP cannot give. Without
     * it, `http://<AMQP host>:15672` (https for amqps) with the URL's credentials is tried and
     * used when it answers; a URL given here must answer.
     */
    managementUrl: z.url().optional(),
    /** `false`: operations use AMQP alone, even where the management API answers. @default true */
    management: bool.default(true),
    /** Name the connection shows in the management UI. @default 'mqkit' */
    connectionName: z.string().min(1).max(255).default('mqkit'),
    /** TLS (amqps://): CA bundle (PEM). */
    ca: z.union([z.string(), z.instanceof(Buffer), z.array(z.union([z.string(), z.instanceof(Buffer)]))]).optional(),
    /** TLS: client certificate (PEM), for mutual TLS. */
    cert: z.union([z.string(), z.instanceof(Buffer)]).optional(),
    /** TLS: client private key (PEM). Never logged. */
    key: z.union([z.string(), z.instanceof(Buffer)]).optional(),
    /** TLS: passphrase of `key`. Never logged. */
    passphrase: z.string().optional(),
    /** TLS: SNI server name, when it differs from the URL's host. */
    servername: z.string().optional(),
    /** TLS: verify the server certificate. Turn off only for local testing. @default true */
    rejectUnauthorized: bool.default(true),
  })
  .strict();

/** Options of the RabbitMQ adapter (URL query parameters or `connect(url, { options })`). */
export type RabbitmqOptions = z.input<typeof optionsSchema>;

/** Options after defaults were applied. */
export type ResolvedRabbitmqOptions = z.output<typeof optionsSchema>;

/** Everything needed to open a connection, split into what amqplib takes and what mqkit uses. */
export interface ConnectionSettings {
  /** URL handed to amqplib (mqkit's own query parameters removed; secrets included: never log it). */
  readonly amqpUrl: string;
  /** The same URL, safe to log. */
  readonly safeUrl: string;
  readonly tls: boolean;
  /** Socket/TLS options for amqplib. */
  readonly socketOptions: Record<string, unknown>;
  readonly options: ResolvedRabbitmqOptions;
}

/** The smallest frame_max RabbitMQ 4.1+ accepts (its initial, pre-authentication frame limit). */
const MIN_FRAME_MAX = 8192;

/** Query parameters amqplib itself understands; they stay in the URL it receives. */
const AMQPLIB_PARAMS = new Set(['frameMax', 'channelMax', 'locale', 'maxFrameSize']);

/**
 * Validates `amqp://user:pass@host:5672/vhost?…` (or `amqps://`) plus options. Throws MqError
 * CONFIG naming the problem, with the URL redacted.
 */
export function parseConnection(url: string, options: Readonly<Record<string, unknown>>): ConnectionSettings {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw configError('invalid RabbitMQ URL (expected amqp://user:pass@host:5672/vhost)', undefined, err);
  }
  if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
    throw configError(`unsupported scheme "${parsed.protocol}" for the RabbitMQ adapter (amqp: or amqps:)`, parsed);
  }
  if (!parsed.hostname) throw configError('RabbitMQ URL has no host', parsed);
  // Parameters amqplib reads stay in its URL; the rest are mqkit options.
  const ours = new URL(parsed.href);
  for (const name of AMQPLIB_PARAMS) ours.searchParams.delete(name);
  const resolved = parseUrlOptions(optionsSchema, ours, options);
  const amqp = new URL(parsed.href);
  for (const name of [...amqp.searchParams.keys()]) if (!AMQPLIB_PARAMS.has(name)) amqp.searchParams.delete(name);
  // amqplib negotiates the lower frame_max of both sides, and RabbitMQ 4.1+ closes a connection
  // whose frame_max is below 8192 (0 = no limit): refuse it here, naming why, not at the broker.
  const frameMax = amqp.searchParams.get('frameMax');
  if (frameMax !== null && !(/^\d+$/.test(frameMax) && (Number(frameMax) === 0 || Number(frameMax) >= MIN_FRAME_MAX))) {
    throw configError(`frameMax ${frameMax} is not allowed: RabbitMQ 4.1+ refuses a frame_max below ${MIN_FRAME_MAX}; leave it out (131072 is negotiated)`, parsed);
  }
  amqp.searchParams.set('heartbeat', String(resolved.heartbeat));
  const tls = parsed.protocol === 'amqps:';
  const socketOptions: Record<string, unknown> = {
    // Confirms, acks and publishes interleave on one socket: Nagle's algorithm against the
    // peer's delayed ACK would hold small frames back for tens of milliseconds.
    noDelay: true,
    timeout: resolved.connectTimeoutMs,
    clientProperties: { connection_name: resolved.connectionName },
  };
  if (tls) {
    for (const name of ['ca', 'cert', 'key', 'passphrase', 'servername'] as const) {
      if (resolved[name] !== undefined) socketOptions[name] = resolved[name];
    }
    socketOptions['rejectUnauthorized'] = resolved.rejectUnauthorized;
  } else if (resolved.ca !== undefined || resolved.cert !== undefined || resolved.key !== undefined) {
    throw configError('TLS options (ca, cert, key) need an amqps:// URL', parsed);
  }
  return { amqpUrl: amqp.href, safeUrl: redactUrl(parsed), tls, socketOptions, options: resolved };
}

const subscribeOptionsSchema = z
  .object({
    /**
     * Consume this queue instead of `<topic>.<group>` (for topology managed outside mqkit).
     * With `declare: true` it is declared with mqkit's arguments.
     */
    queue: z.string().min(1).max(255).optional(),
  })
  .strict();

/** Per-subscription options (`subscribe(topic, { options })`). */
export type RabbitmqSubscribeOptions = z.input<typeof subscribeOptionsSchema>;

/** Validates a subscription's `options` (strict: a typo is a CONFIG error naming it). */
export function parseSubscribeOptions(value: unknown): z.output<typeof subscribeOptionsSchema> {
  return parseOptions(subscribeOptionsSchema, value ?? {}, 'rabbitmq subscribe options');
}

/** AMQP's prefetch count is an unsigned 16-bit number (0 would mean unlimited: never sent). */
const MAX_PREFETCH = 65_535;

const inFlightSchema = z.union([z.literal(Number.POSITIVE_INFINITY), z.number().int().min(1)]);

/**
 * The `basic.qos` prefetch count for a subscription's in-flight bound. NaN, negative, 0 or
 * fractional bounds are CONFIG errors: they must never reach `channel.prefetch()` (NaN there
 * disables backpressure, a negative one stalls the consumer).
 */
export function prefetchCount(maxInFlight: number): number {
  const n = parseOptions(inFlightSchema, maxInFlight, 'rabbitmq prefetch (concurrency + prefetch)');
  return Math.min(MAX_PREFETCH, n);
}
