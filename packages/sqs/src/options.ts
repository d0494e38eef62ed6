/**
 * Connection and subscription options of the SQS adapter: one strict zod schema each, giving both
 * the TypeScript types and the runtime check. URL query parameters arrive as strings, hence the
 * coercions of the connection options; subscription options come from code and are not coerced.
 */
import { configError, parseOptions, parseUrlOptions } from '@mqkit/core/driver';
import { z } from 'zod';

/**
 * A number given in code, or a decimal string from the URL query. Nothing else is coerced: `true`,
 * `''` or `null` are refused rather than read as 1 or 0.
 */
const queryNumber = <S extends z.ZodType>(schema: S) => z.preprocess((v) => (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v), schema);
const flag = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);

const credentialsSchema = z
  .object({
    accessKeyId: z.string().min(1),
    secretAccessKey: z.string().min(1),
    sessionToken: z.string().min(1).optional(),
  })
  .strict();

export const connectionSchema = z
  .object({
    /** AWS region. @default the URL host, else `AWS_REGION` / `AWS_DEFAULT_REGION` */
    region: z.string().regex(/^[a-z0-9-]+$/).optional(),
    /** SQS endpoint (an emulator or a VPC endpoint). @default the AWS endpoint of the region */
    endpoint: z.url().optional(),
    /** SNS endpoint. @default `endpoint` */
    snsEndpoint: z.url().optional(),
    /**
     * `true`: a topic is an SNS topic and each group an SQS queue subscribed to it (fan-out).
     * `false`: a topic is one SQS queue and all groups compete on it (no fan-out). @default true
     */
    sns: flag.default(true),
    /** Create queues, topics, subscriptions and redrive policies when first used. @default true */
    declare: flag.default(true),
    /** AWS account id, needed only to build topic ARNs when `declare` is false and `sns` is true. */
    accountId: z.string().regex(/^\d{12}$/).optional(),
    /**
     * Largest message (body + attributes on the wire). @default 262144 with SNS, 1048576 without
     */
    maxMessageBytes: queryNumber(z.number().int().min(1024).max(1024 * 1024)).optional(),
    /** Deadline of one send/delete/visibility call, in ms. @default 10000 */
    requestTimeoutMs: queryNumber(z.number().int().positive()).default(10_000),
    /**
     * Attempts the AWS SDK makes per call. mqkit's reliable sender retries by itself, so the SDK's
     * own retries are off by default. @default 1
     */
    sdkMaxAttempts: queryNumber(z.number().int().min(1).max(10)).default(1),
    /**
     * Static credentials (options object only, never the URL). @default the AWS SDK's provider
     * chain (environment, shared config/profile, SSO, container and instance roles)
     */
    credentials: credentialsSchema.optional(),
    /**
     * Secret shared by the consumers of a queue (at least 16 characters; options object or URL,
     * never logged). It seals the attempt count a consumer writes into the copy it re-sends for a
     * nack delay beyond SQS's 12-hour visibility cap, so the count survives the re-send while a
     * count written by another producer is never trusted. @default a random key per connection:
     * a copy received by another connection then counts its attempts from its own receives
     */
    signingKey: z.string().min(16).optional(),
  })
  .strict();

/** Options of the SQS adapter (URL query parameters or `connect(url, { options })`). */
export type SqsOptions = z.input<typeof connectionSchema>;

/** Validated connection settings. */
export interface SqsSettings extends Omit<z.output<typeof connectionSchema>, 'region' | 'maxMessageBytes'> {
  readonly region: string;
  readonly maxMessageBytes: number;
}

/** SNS's message limit; SQS accepts 1 MiB since August 2025. */
export const SNS_MAX_BYTES = 256 * 1024;
export const SQS_MAX_BYTES = 1024 * 1024;

/**
 * Parses `sqs://[region]?endpoint=…&sns=false&…` plus explicit options (which win). Throws
 * MqError CONFIG naming the bad options, never echoing their values.
 */
export function parseConnection(url: string, options: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv = process.env): SqsSettings {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw configError('invalid sqs:// URL', undefined, err);
  }
  if (parsed.protocol !== 'sqs:') throw configError(`the SQS adapter serves sqs:// URLs, not ${parsed.protocol}//`, parsed);
  if (parsed.username || parsed.password) {
    throw configError('sqs:// URLs take no user or password: use the AWS provider chain or options.credentials', parsed);
  }
  const data = parseUrlOptions(connectionSchema, parsed, options);
  const region = data.region ?? (parsed.hostname || undefined) ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) throw configError('sqs: no region: put it in the URL (sqs://us-east-1 or ?region=) or set AWS_REGION', parsed);
  if (!data.sns && data.snsEndpoint) throw configError('sqs: snsEndpoint given but sns=false', parsed);
  const limit = data.sns ? SNS_MAX_BYTES : SQS_MAX_BYTES;
  if (data.maxMessageBytes !== undefined && data.maxMessageBytes > limit) {
    throw configError(`sqs: maxMessageBytes may be at most ${limit} ${data.sns ? 'with SNS' : 'for SQS'}`, parsed);
  }
  return { ...data, region, maxMessageBytes: data.maxMessageBytes ?? limit };
}

/** SQS's limit on a redrive policy's maxReceiveCount. */
export const MAX_RECEIVE_COUNT = 1000;

/**
 * The redrive policy's maxReceiveCount for a subscription: never at or below core's `maxAttempts`
 * (the native guard must not fire first). `undefined` = no redrive policy, when `maxAttempts` is
 * too high for SQS or unlimited: core then dead-letters from the receive count by itself. A
 * configured count at or below `maxAttempts` is a CONFIG error. Ordered subscriptions get the
 * highest count SQS allows (successors given back unhandled gain receives, see the consumer).
 */
export function redriveReceiveCount(maxAttempts: number, configured: number | undefined, ordered = false): number | undefined {
  if (configured !== undefined) {
    if (configured <= maxAttempts) {
      throw configError(
        `sqs: maxReceiveCount (${configured}) must be above retry.maxAttempts (${maxAttempts}), or the redrive would dead-letter before the retry policy does; leave it unset for the default`,
      );
    }
    return configured;
  }
  const count = maxAttempts + 2;
  if (count > MAX_RECEIVE_COUNT) return undefined;
  // Ordered: messages given back unhandled behind a nacked one of their key gain receives too,
  // so the backstop sits as high as SQS allows.
  return ordered ? MAX_RECEIVE_COUNT : count;
}

export const subscriptionSchema = z
  .object({
    /** Seconds a received message stays hidden; the heartbeat extends it while the handler runs. @default 30 */
    visibilityTimeoutSec: z.number().int().min(1).max(43_200).default(30),
    /** Long-poll wait of one receive, in s (0–20). @default 20 */
    waitTimeSec: z.number().int().min(0).max(20).default(20),
    /** Concurrent receive loops. @default 1 when ordered, else ceil(maxInFlight / 10), at most 8 */
    pollers: z.number().int().min(1).max(32).optional(),
    /** Extend the visibility of unsettled messages before it runs out. @default true */
    heartbeat: z.boolean().default(true),
    /** SNS subscription filter policy (fan-out mode only). */
    filterPolicy: z.record(z.string(), z.unknown()).optional(),
    /** What the filter policy matches. @default 'MessageAttributes' */
    filterPolicyScope: z.enum(['MessageAttributes', 'MessageBody']).default('MessageAttributes'),
    /** Declare a redrive policy to the dead-letter queue (poison guard if consumers crash). @default true */
    redrive: z.boolean().default(true),
    /**
     * Receives before SQS itself moves a message to the dead-letter queue (SQS allows 1–1,000).
     * Core dead-letters at `maxAttempts` with diagnostic headers, also a message that arrives past
     * it unhandled (counted from ApproximateReceiveCount); the redrive is only a backstop and must
     * lie above `maxAttempts`. @default maxAttempts + 2 when that is at most 1,000, else no redrive
     */
    maxReceiveCount: z.number().int().min(1).max(MAX_RECEIVE_COUNT).optional(),
  })
  .strict();

/** Adapter options of one subscription (`subscribe(topic, { options })`). */
export type SqsSubscribeOptions = z.input<typeof subscriptionSchema>;
export type SqsSubscribeSettings = z.output<typeof subscriptionSchema>;

/**
 * Validates a subscription's adapter options (an object in code, never a URL: numbers and booleans
 * only, no coercion). MqError CONFIG naming each bad field.
 */
export function parseSubscription(options: Readonly<Record<string, unknown>>): SqsSubscribeSettings {
  return parseOptions(subscriptionSchema, options, 'sqs subscribe options');
}
