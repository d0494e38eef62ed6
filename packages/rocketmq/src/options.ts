/**
 * The adapter's configuration: one zod schema over the URL query and the explicit options, so the
 * TypeScript type and the runtime check cannot drift apart.
 */
import { configError, parseOptions, parseUrlOptions } from '@mqkit/core/driver';
import { z } from 'zod';
import { UNLIMITED_GROUP_RETRIES } from './retry-limit.ts';
import type { TransactionCheck } from './transaction-checker.ts';

/**
 * A number given in code, or a decimal string from the URL query. Nothing else is coerced: `true`,
 * `''` or `null` are refused rather than read as 1 or 0.
 */
const queryNumber = <S extends z.ZodType>(schema: S) => z.preprocess((v) => (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v), schema);
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);
const list = z.union([z.array(z.string().min(1)), z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))]);

const optionsSchema = z
  .object({
    /** Namespace (RocketMQ 5 resource namespace) prefixed to topics and groups by the proxy. @default '' */
    namespace: z.string().default(''),
    /** TLS to the proxy. @default false */
    tls: bool.default(false),
    /** ACL access key (also the URL's user part). */
    accessKey: z.string().min(1).optional(),
    /** ACL secret key (also the URL's password part). Never logged. */
    secretKey: z.string().min(1).optional(),
    /** Optional STS session token. Never logged. */
    securityToken: z.string().min(1).optional(),
    /** Timeout of one gRPC request (send, ack, route query), in ms. @default 5000 */
    requestTimeoutMs: queryNumber(z.number().int().min(1000)).default(5000),
    /** Startup (route query + settings handshake) deadline, in ms; the client has none. @default 15000 */
    startupTimeoutMs: queryNumber(z.number().int().min(1000)).default(15_000),
    /**
     * How long a received message stays invisible to the group before the broker redelivers it,
     * in ms (10 s – 12 h; the proxy's floor is `minInvisibleTimeMillsForRecv`). Running handlers
     * keep their message invisible by renewing it every third of this. @default 30000
     */
    invisibleDurationMs: queryNumber(z.number().int().min(1000).max(12 * 3600_000)).default(30_000),
    /** Long-polling wait of one receive call, in ms (the proxy clamps it, 5–20 s by default). @default 5000 */
    awaitDurationMs: queryNumber(z.number().int().min(1000).max(30_000)).default(5000),
    /** Most messages one receive call asks for (the proxy caps it at 32). @default 32 */
    receiveBatchSize: queryNumber(z.number().int().min(1).max(32)).default(32),
    /** Name server `host:port`, used only by the declare step (topic and group creation). */
    namesrv: z.string().min(1).optional(),
    /**
     * Topics this process publishes transactionally. A producer declaring them is started at
     * connect so the broker's check-back reaches this process (also after a crash).
     */
    transactionTopics: list.default([]),
    /** Answers the broker's check-back for half messages whose producer never decided. */
    transactionChecker: z.custom<TransactionCheck>((v) => typeof v === 'function', 'must be a function').optional(),
    /**
     * Create an orderly (FIFO) consumer group through the name server when an ordered
     * subscription consumes a FIFO topic. Needs `namesrv`. @default true when `namesrv` is set
     */
    declareGroups: bool.optional(),
  })
  .strict();

/** Options of the RocketMQ adapter (URL query parameters or `connect(url, { options })`). */
export type RocketmqOptions = z.input<typeof optionsSchema>;

/** Parsed, validated configuration. */
export interface RocketmqConfig extends Omit<z.output<typeof optionsSchema>, 'declareGroups'> {
  /** gRPC proxy endpoints, `host:port[;host:port]` as the client wants them. */
  readonly endpoints: string;
  readonly declareGroups: boolean;
}

/** Subscription options (`subscribe(topic, { options })`). */
const subscriptionSchema = z
  .object({
    invisibleDurationMs: z.number().int().min(1000).max(12 * 3600_000).optional(),
    awaitDurationMs: z.number().int().min(1000).max(30_000).optional(),
    receiveBatchSize: z.number().int().min(1).max(32).optional(),
    /**
     * Receive calls kept open at once. @default one per `receiveBatchSize` that fits into the
     * subscription's in-flight budget (`concurrency` + `prefetch`), at most 4; always 1 for
     * ordered subscriptions
     */
    receiveConcurrency: z.number().int().min(1).max(16).optional(),
    /** Tag filter expression. @default '*' */
    tag: z.string().min(1).optional(),
    /**
     * `retryMaxTimes` of the consumer group when it was created outside mqkit. The broker moves a
     * message to `%DLQ%<group>` after that many redeliveries, so it must lie above
     * `retry.maxAttempts` (by 2): with `namesrv` the adapter raises it by declaring the group,
     * without it `subscribe()` fails with CONFIG. @default 16 (RocketMQ's default)
     */
    groupRetryMaxTimes: z.number().int().min(0).max(UNLIMITED_GROUP_RETRIES).optional(),
  })
  .strict();

/** Adapter-specific options of a subscription. */
export type RocketmqSubscribeOptions = z.input<typeof subscriptionSchema>;

/** Parses `rocketmq://[accessKey:secretKey@]host:port[,host:port]?…` plus explicit options. */
export function parseConfig(url: string, options: Readonly<Record<string, unknown>>): RocketmqConfig {
  const match = /^rocketmq:\/\/(?:([^@/]*)@)?([^/?#]*)\/?(\?[^#]*)?$/i.exec(url);
  if (!match) throw configError('rocketmq: the URL must look like rocketmq://host:8081[,host:8081]?namespace=…', url);
  const [, userInfo, hosts = '', query = ''] = match;
  const endpoints = hosts
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  if (endpoints.length === 0) throw configError('rocketmq: the URL names no proxy endpoint', url);
  for (const endpoint of endpoints) {
    if (!/^[A-Za-z0-9.\-[\]:]+$/.test(endpoint)) throw configError('rocketmq: invalid endpoint in the URL', url);
  }
  const fromUser: Record<string, string> = {};
  if (userInfo) {
    const [user = '', pass] = userInfo.split(':');
    if (user) fromUser.accessKey = safeDecode(user);
    if (pass !== undefined) fromUser.secretKey = safeDecode(pass);
  }
  // The WHATWG parser wants one host; the query is all parseUrlOptions needs from it.
  const queryUrl = new URL(`rocketmq://${endpoints[0]}/${query}`);
  const parsed = parseUrlOptions(optionsSchema, queryUrl, { ...fromUser, ...options });
  if ((parsed.accessKey === undefined) !== (parsed.secretKey === undefined)) {
    throw configError('rocketmq: accessKey and secretKey go together', url);
  }
  const { declareGroups, ...rest } = parsed;
  return { ...rest, endpoints: endpoints.join(';'), declareGroups: declareGroups ?? parsed.namesrv !== undefined };
}

/**
 * Validates a subscription's adapter options (an object in code, never a URL: numbers only, no
 * coercion). MqError CONFIG naming each bad field.
 */
export function parseSubscribeOptions(options: Readonly<Record<string, unknown>>): z.output<typeof subscriptionSchema> {
  return parseOptions(subscriptionSchema, options, 'rocketmq subscribe options');
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
