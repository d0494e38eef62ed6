/**
 * The mapping between an mqkit {@link Envelope} and AMQP 0-9-1 message properties.
 *
 * Native fields: `messageId` = id, `timestamp` = seconds (AMQP has no finer unit), `contentType`
 * = the `content-type` header (not repeated in the table), `deliveryMode` 2 (persistent).
 * Everything AMQP cannot carry exactly travels in `x-mqkit-*` headers that are stripped again on
 * receipt: the key (routing keys are rewritten by dead-lettering), the millisecond timestamp, and
 * the count of deliveries a retried copy already had, and when a delayed publish is due.
 *
 * Those headers can also be set by any other AMQP client publishing to the topic, so none is
 * trusted blindly: a deliver-at is honoured only within {@link MAX_DELAY_MS}, prior attempts only
 * on a message RabbitMQ dead-lettered out of this group's own delay queue (its `x-death`), and the
 * quorum queue's `x-delivery-count` only on a redelivery (on a first delivery RabbitMQ passes a
 * producer's header of that name through untouched).
 */
import { createHash } from 'node:crypto';
import { LEGACY_WIRE_HEADERS, WIRE_HEADERS, type Envelope } from '@mqkit/core/driver';
import type { MessageProperties, Options } from 'amqplib';
import { isDelayQueueOf } from './names.ts';

/** Longest delay: per-message TTL is an unsigned 32-bit ms value; a day keeps queues short-lived. */
export const MAX_DELAY_MS = 24 * 3600_000;

/**
 * Headers the adapter writes for itself (core's {@link WIRE_HEADERS}: key, timestamp, prior
 * attempts before a delay-queue re-publish, deliver-at that parks a delayed publish), and the
 * timestamp's earlier name; never shown to handlers.
 */
const TRANSPORT_HEADERS = new Set<string>([WIRE_HEADERS.key, WIRE_HEADERS.timestamp, LEGACY_WIRE_HEADERS.timestamp, WIRE_HEADERS.priorAttempts, WIRE_HEADERS.deliverAt]);

/** Headers RabbitMQ adds itself (dead-lettering, quorum delivery count, federation/shovel). */
function isBrokerHeader(name: string): boolean {
  return (
    name === 'x-death' ||
    name === 'x-delivery-count' ||
    name === 'x-acquired-count' ||
    name.startsWith('x-first-death-') ||
    name.startsWith('x-last-death-') ||
    name === 'x-received-from' ||
    name === 'CC' ||
    name === 'BCC'
  );
}

/**
 * AMQP publish options for `envelope`. `priorAttempts` is set when re-publishing a retry,
 * `deliverAt` on a delayed publish.
 */
export function toPublishOptions(envelope: Envelope, priorAttempts?: number, deliverAt?: number): Options.Publish {
  // content-type travels once, as the native property (restored into the headers on receipt).
  const headers: Record<string, string | number> = {};
  for (const name in envelope.headers) if (name !== 'content-type') headers[name] = envelope.headers[name]!;
  headers[WIRE_HEADERS.timestamp] = envelope.timestamp;
  if (envelope.key !== undefined) headers[WIRE_HEADERS.key] = envelope.key;
  if (priorAttempts !== undefined && priorAttempts > 0) headers[WIRE_HEADERS.priorAttempts] = priorAttempts;
  if (deliverAt !== undefined) headers[WIRE_HEADERS.deliverAt] = deliverAt;
  return {
    messageId: envelope.id,
    timestamp: Math.floor(envelope.timestamp / 1000),
    persistent: true,
    mandatory: true,
    contentType: envelope.headers['content-type'],
    headers,
  };
}

/** What a received message tells beyond its envelope. */
export interface Received {
  readonly envelope: Envelope;
  /** Deliveries the message had in earlier incarnations (before delay-queue re-publishes). */
  readonly priorAttempts: number;
  /** The quorum queue's count of earlier deliveries of this incarnation (0 on the first). */
  readonly deliveryCount: number;
  /** Epoch ms a delayed publish is due, when that lies ahead (and within {@link MAX_DELAY_MS}). */
  readonly deliverAt: number | undefined;
}

function headerString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
}

function headerNumber(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  return undefined;
}

/**
 * Rebuilds the envelope of a delivered message. `topic` is the subscription's topic (the
 * exchange a message arrives through changes when it passes a delay or dead-letter hop), `queue`
 * the group queue it was consumed from, `routingKey` the delivery's routing key.
 */
export function fromDelivery(
  topic: string,
  content: Buffer,
  properties: MessageProperties,
  redelivered: boolean,
  queue: string,
  routingKey: string,
  now?: number,
): Received {
  const raw = (properties.headers ?? {}) as Record<string, unknown>;
  const headers: Record<string, string> = {};
  // for-in, not Object.entries: no [name, value] array per header on the consume hot path.
  for (const name in raw) {
    if (TRANSPORT_HEADERS.has(name) || isBrokerHeader(name)) continue;
    const text = headerString(raw[name]);
    if (text !== undefined) headers[name] = text;
  }
  if (headers['content-type'] === undefined && typeof properties.contentType === 'string') headers['content-type'] = properties.contentType;
  const key = headerString(raw[WIRE_HEADERS.key]);
  const ms = headerNumber(raw[WIRE_HEADERS.timestamp] ?? raw[LEGACY_WIRE_HEADERS.timestamp]);
  const seconds = headerNumber(properties.timestamp);
  const timestamp = ms ?? (seconds !== undefined ? seconds * 1000 : (now ?? Date.now()));
  const id = typeof properties.messageId === 'string' && properties.messageId !== '' ? properties.messageId : fallbackId(content, properties, routingKey);
  // On a first delivery RabbitMQ leaves a producer's x-delivery-count header as it was.
  let count = redelivered ? headerNumber(raw['x-delivery-count']) : 0;
  // RabbitMQ 4.x counts in x-delivery-count only failed returns (4.3: basic.reject), and every
  // delivery, also one returned by a closed channel, in x-acquired-count: the larger one counts.
  const acquired = redelivered ? raw['x-acquired-count'] : undefined;
  if (acquired !== undefined) {
    const n = headerNumber(acquired);
    if (n !== undefined && (count === undefined || n > count)) count = n;
  }
  // Rare headers: looked at only when present (the consume hot path reads no clock otherwise).
  const priorRaw = raw[WIRE_HEADERS.priorAttempts];
  const prior = priorRaw === undefined ? undefined : headerNumber(priorRaw);
  const atRaw = raw[WIRE_HEADERS.deliverAt];
  return {
    envelope: {
      id,
      topic,
      key,
      headers,
      body: new Uint8Array(content.buffer, content.byteOffset, content.byteLength),
      timestamp,
    },
    priorAttempts: prior !== undefined && Number.isSafeInteger(prior) && prior > 0 && cameFromDelayQueue(raw['x-death'], queue) ? prior : 0,
    deliveryCount: count !== undefined && Number.isSafeInteger(count) && count > 0 ? count : redelivered ? 1 : 0,
    deliverAt: atRaw === undefined ? undefined : dueTime(headerNumber(atRaw), now ?? Date.now()),
  };
}

/** A deliver-at still ahead and within {@link MAX_DELAY_MS} of `now`; anything else is ignored. */
function dueTime(at: number | undefined, now: number): number | undefined {
  return at !== undefined && at > now && at <= now + MAX_DELAY_MS ? at : undefined;
}

/**
 * Whether RabbitMQ dead-lettered this message out of one of `queue`'s own delay queues (TTL
 * expiry): only such a copy was written by mqkit's retry, so only then is its prior-attempts
 * header believed.
 */
function cameFromDelayQueue(deaths: unknown, queue: string): boolean {
  if (!Array.isArray(deaths)) return false;
  for (const death of deaths) {
    if (typeof death !== 'object' || death === null) continue;
    const { queue: from, reason } = death as { queue?: unknown; reason?: unknown };
    if (headerString(reason) === 'expired' && isDelayQueueOf(headerString(from) ?? '', queue)) return true;
  }
  return false;
}

/** AMQP properties that identify a foreign message (never changed by a redelivery). */
const IDENTIFYING_PROPERTIES = ['contentType', 'contentEncoding', 'correlationId', 'replyTo', 'expiration', 'timestamp', 'type', 'userId', 'appId', 'priority'] as const;

/**
 * The id of a message published without `messageId` (by a foreign client): a SHA-256 of what the
 * producer sent — body, routing key, identifying properties and its headers, sorted, without
 * those the broker adds or changes per delivery (`x-delivery-count`, `x-death`, …). The same on
 * every redelivery (so `idempotent()` recognises it) and different for different content.
 * Identical messages published twice get the same id: they are the same message to mqkit.
 */
export function fallbackId(content: Buffer, properties: MessageProperties, routingKey: string): string {
  const hash = createHash('sha256');
  hash.update(`rk:${routingKey.length}:${routingKey}\n`);
  for (const name of IDENTIFYING_PROPERTIES) {
    const value: unknown = properties[name];
    if (value !== undefined && value !== null) hash.update(`p:${name}=${canonical(value)}\n`);
  }
  const raw = (properties.headers ?? {}) as Record<string, unknown>;
  for (const name of Object.keys(raw).sort()) {
    if (isBrokerHeader(name)) continue;
    hash.update(`h:${JSON.stringify(name)}=${canonical(raw[name])}\n`);
  }
  hash.update(`b:${content.byteLength}\n`);
  hash.update(content);
  return `amqp-${hash.digest('base64url')}`;
}

/** An unambiguous text form of an AMQP field value (strings, numbers, buffers, arrays, tables). */
function canonical(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return `s${JSON.stringify(value)}`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return `${(typeof value)[0]}${String(value)}`;
  if (Buffer.isBuffer(value)) return `x${value.toString('base64')}`;
  if (value instanceof Date) return `d${value.getTime()}`;
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object') {
    const table = value as Record<string, unknown>;
    return `{${Object.keys(table)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(table[k])}`)
      .join(',')}}`;
  }
  return `?${typeof value}`; // a symbol or a function: no AMQP field value is one
}
