/**
 * Connection URL and options of the Kafka adapter: one zod schema gives both the runtime check
 * and the public type. Kafka URLs name several brokers (`kafka://h1:9092,h2:9092`), which is no
 * WHATWG URL, so the host list is split off by hand before the query goes through core's
 * `parseUrlOptions`.
 */
import { z } from 'zod';
import { configError, parseOptions, parseUrlOptions } from '@mqkit/core/driver';

const boolish = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);

const tlsSchema = z
  .object({
    /** PEM CA bundle(s) to trust. */
    ca: z.union([z.string(), z.array(z.string())]).optional(),
    /** PEM client certificate (mutual TLS). */
    cert: z.string().optional(),
    /** PEM client key (mutual TLS). */
    key: z.string().optional(),
    /** Passphrase of `key`. */
    passphrase: z.string().optional(),
    /** @default true */
    rejectUnauthorized: z.boolean().optional(),
    /** SNI host name. */
    servername: z.string().optional(),
  })
  .strict();

const saslSchema = z
  .object({
    mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
    username: z.string().min(1),
    password: z.string(),
  })
  .strict();

/** Adapter options: URL query parameters or `connect(url, { options })` (explicit options win). */
export const kafkaOptionsSchema = z
  .object({
    /** Client id sent to the brokers (shows in broker logs and quotas). @default 'mqkit' */
    clientId: z.string().min(1).default('mqkit'),
    /** `true` (or `?ssl=true`) for TLS with system CAs, or Node TLS options. @default false */
    ssl: z.union([boolish, tlsSchema]).default(false),
    /**
     * SASL credentials. From the URL: `kafka://user:pass@host:9092?saslMechanism=scram-sha-512`.
     * Never logged.
     */
    sasl: saslSchema.optional(),
    /** SASL mechanism used with URL credentials. @default 'plain' */
    saslMechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).default('plain'),
    /** TCP connect timeout per broker, in ms. @default 3000 */
    connectionTimeout: z.coerce.number().int().positive().default(3_000),
    /** Timeout of one request, in ms. @default 30000 */
    requestTimeout: z.coerce.number().int().positive().default(30_000),
    /**
     * kafkajs' own retries per request (client level; they cover connection errors). Kept low on
     * purpose: core's reliable sender retries retryable failures until the publish deadline.
     * @default 5
     */
    retries: z.coerce.number().int().min(1).max(30).default(5),
    /** Longest wait between two of kafkajs' own retries, in ms. @default 2000 */
    maxRetryTime: z.coerce.number().int().positive().default(2_000),
    /** Messages per produce request (`capabilities.maxBatchSize`). @default 500 */
    maxBatchSize: z.coerce.number().int().positive().max(10_000).default(500),
    /** Largest message accepted before sending (broker `message.max.bytes`). @default 1048576 */
    maxMessageBytes: z.coerce.number().int().positive().default(1024 * 1024),
    /** Produce compression. @default 'none' */
    compression: z.enum(['none', 'gzip']).default('none'),
    /**
     * Create missing topics (and their dead-letter topics) through the admin client before the
     * first publish or subscribe. Off by default: production topics are usually provisioned.
     * @default false
     */
    createTopics: boolish.default(false),
    /** Partitions of topics created by `createTopics`. @default 3 */
    numPartitions: z.coerce.number().int().positive().default(3),
    /** Replication factor of created topics; -1 takes the broker's default. @default -1 */
    replicationFactor: z.coerce.number().int().min(-1).default(-1),
    /**
     * `min.insync.replicas` of topics mqkit creates: with acks=all a write needs that many in-sync
     * replicas (production: replicationFactor 3, minInsyncReplicas 2). @default the broker's
     */
    minInsyncReplicas: z.coerce.number().int().positive().optional(),
    /** Broker-side timeout of transactions, in ms. @default 60000 */
    transactionTimeout: z.coerce.number().int().positive().default(60_000),
    /**
     * The Kafka client library under the adapter (`?client=kafkajs`): `platformatic` is
     * @platformatic/kafka, `kafkajs` is kafkajs 2.2.4. Both give the same guarantees (see README).
     * @default 'kafkajs'
     */
    client: z.enum(['platformatic', 'kafkajs']).default('kafkajs'),
    /**
     * Consumer group rebalance protocol: `classic` (JoinGroup/SyncGroup, every broker) or
     * `consumer` (KIP-848, brokers ≥ 4.0; `client: 'platformatic'` only). @default 'classic'
     */
    groupProtocol: z.enum(['classic', 'consumer']).default('classic'),
  })
  .strict();

/** Options accepted by the Kafka adapter (see the README for each default). */
export type KafkaOptions = z.input<typeof kafkaOptionsSchema>;

/**
 * Per-subscription options (`subscribe(topic, { options })`). An object in code, never a URL: no
 * coercion, so `'20'` or `'yes'` is an error like a typo is.
 */
export const kafkaSubscriptionSchema = z
  .object({
    /** Where a new consumer group starts: true = earliest, false = latest. @default true */
    fromBeginning: z.boolean().default(true),
    /** Group session timeout, in ms: how long a dead member keeps its partitions. @default 10000 */
    sessionTimeout: z.number().int().positive().default(10_000),
    /** Heartbeat interval, in ms (also how fast members notice a rebalance). @default 1000 */
    heartbeatInterval: z.number().int().positive().default(1_000),
    /** Longest time a fetch waits for data, in ms (latency vs. idle requests). @default 100 */
    maxWaitTimeInMs: z.number().int().positive().default(100),
    /**
     * Messages held in the adapter (fetched, not yet committed) before fetching pauses.
     * @default 8 × maxInFlight, at least 5000 (fetching resumes at half; a smaller bound makes consumption wait on kafkajs' fetch restart)
     */
    maxBufferedMessages: z.number().int().positive().optional(),
    /** How long subscribe() waits for the first group assignment, in ms. @default 15000 */
    joinTimeoutMs: z.number().int().nonnegative().default(15_000),
    /**
     * How long acks accumulate before their contiguous position is committed, in ms (0 = commit as
     * soon as the position advances, one commit in flight at a time). Close always commits what was
     * acked; a crash or a rebalance within the window redelivers those messages. @default 20
     */
    commitIntervalMs: z.number().int().nonnegative().max(5_000).default(20),
  })
  .strict();

/** Validates `subscribe(topic, { options })` for Kafka: CONFIG naming the field otherwise. */
export function parseKafkaSubscriptionOptions(options: unknown): z.output<typeof kafkaSubscriptionSchema> {
  return parseOptions(kafkaSubscriptionSchema, options ?? {}, 'kafka subscribe options');
}

/** Subscription options of the Kafka adapter. */
export type KafkaSubscriptionOptions = z.input<typeof kafkaSubscriptionSchema>;

/** Validated settings the driver runs with. */
export interface KafkaSettings extends Omit<z.output<typeof kafkaOptionsSchema>, 'saslMechanism' | 'sasl'> {
  readonly brokers: readonly string[];
  readonly sasl: z.output<typeof saslSchema> | undefined;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/**
 * Parses `kafka://[user:password@]host:port[,host:port…][/][?option=value…]` plus explicit
 * options. Throws MqError CONFIG without echoing secrets.
 */
export function parseKafkaUrl(url: string, options: Readonly<Record<string, unknown>>): KafkaSettings {
  const match = /^kafka:\/\/([^/?#]*)\/?(\?[^#]*)?$/i.exec(url);
  if (!match) throw configError('invalid kafka URL: expected kafka://host:port[,host:port…][?options]', safeUrlForErrors(url));
  const authority = match[1] ?? '';
  const query = match[2] ?? '';
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at) : '';
  const hostList = at >= 0 ? authority.slice(at + 1) : authority;
  const brokers = hostList.split(',').map((h) => h.trim()).filter(Boolean);
  if (brokers.length === 0) throw configError('kafka URL names no broker (kafka://host:9092)', safeUrlForErrors(url));
  for (const broker of brokers) {
    const hp = HOST_PORT.exec(broker);
    if (!hp || Number(hp[2]) < 1 || Number(hp[2]) > 65535) {
      throw configError(`kafka URL: "${broker}" is not host:port`, safeUrlForErrors(url));
    }
  }
  // A WHATWG URL carrying only the query (and the redacted credentials) for parseUrlOptions.
  const carrier = new URL(`kafka://${userinfo ? `${userinfo}@` : ''}placeholder/${query}`);
  const parsed = parseUrlOptions(kafkaOptionsSchema, carrier, options);
  const { saslMechanism, sasl: explicitSasl, ...rest } = parsed;
  let sasl = explicitSasl;
  if (!sasl && userinfo) {
    const username = decodeURIComponent(carrier.username);
    const password = decodeURIComponent(carrier.password);
    if (!username) throw configError('kafka URL: credentials need a user name', carrier);
    sasl = { mechanism: saslMechanism, username, password };
  }
  return { ...rest, brokers, sasl };
}

/**
 * A WHATWG-parseable stand-in for a Kafka URL, for `configError`/`redactUrl`: the first host
 * only, so the password and secret query parameters are masked like everywhere else.
 */
export function safeUrlForErrors(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/i.exec(url);
  if (!m) return '<unparseable url>';
  const authority = m[2] ?? '';
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at + 1) : '';
  const firstHost = (at >= 0 ? authority.slice(at + 1) : authority).split(',')[0] ?? '';
  return `${m[1]}${userinfo}${firstHost}${m[3] ?? ''}`;
}
