/**
 * The wire form of an mqkit envelope on SQS and SNS.
 *
 * SQS and SNS allow 10 message attributes, fewer than mqkit's headers (a dead-lettered message
 * alone carries seven `x-mqkit-*` headers). So the envelope's metadata travels compactly in ONE
 * String attribute, `mqkit`, holding JSON: `{v, id, ts, k?, h, e?, due?, a?}` (id, timestamp,
 * key, headers, body encoding, due time of long delays, attempts already made). Application
 * headers are also mirrored as individual String attributes, as many as fit, so that SNS filter
 * policies can match them; the consumer reads only the JSON.
 *
 * Bodies must be XML-safe Unicode text: valid UTF-8 without forbidden characters goes as it is;
 * anything else (binary payloads) is base64 (`e: "b64"`), and an empty body is sent as `-`
 * (`e: "empty"`), since SQS refuses empty bodies.
 *
 * Any producer on the queue can write an attribute named `mqkit`, so what in it controls delivery
 * is checked on receive: `e: "empty"` empties only the `-` placeholder body (never real data), a
 * `due` further ahead than the longest delay is ignored (no parking a message for ever), and the
 * attempts `a` count only when sealed (`s`, an HMAC over id, attempts and due time) with the
 * consumer's key: a forged count cannot make a first delivery skip its retries.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Envelope } from '@mqkit/core/driver';
import { HEADERS, RESERVED_HEADER_PREFIX } from '@mqkit/core/driver';

/** The attribute holding the envelope metadata. */
export const META_ATTRIBUTE = 'mqkit';
/** Binary attribute carrying a binary body raw (queue sends only, see {@link WireOptions}). */
export const BODY_ATTRIBUTE = 'mqkit-body';
/** SQS/SNS attribute limit. */
export const MAX_ATTRIBUTES = 10;
/** Longest delay the adapter offers (publish or nack): re-scheduled in 15-minute hops. */
export const MAX_DELAY_MS = 7 * 24 * 3600_000;
/** A received `due` further ahead than this is not mqkit's (clock skew allowed): ignored. */
export const MAX_DUE_AHEAD_MS = MAX_DELAY_MS + 3600_000;
/** Placeholder body of an empty message (SQS refuses empty bodies). */
const EMPTY_BODY = '-';

export interface MessageAttribute {
  DataType: string;
  StringValue?: string | undefined;
  BinaryValue?: Uint8Array | undefined;
}

/** Metadata carried in the `mqkit` attribute. */
export interface WireMeta {
  readonly v: 1;
  readonly id: string;
  readonly ts: number;
  readonly k?: string | undefined;
  readonly h: Record<string, string>;
  /** Body encoding when not plain text: base64, empty, or raw in the {@link BODY_ATTRIBUTE}. */
  readonly e?: 'b64' | 'empty' | 'bin' | undefined;
  /** Epoch ms before which the message must not be handled (delays beyond the native maximum). */
  readonly due?: number | undefined;
  /** Deliveries made before this copy was (re-)sent, added to ApproximateReceiveCount. */
  readonly a?: number | undefined;
  /** Seal of `a`: base64url HMAC-SHA256 (first 16 bytes) of id, `a` and `due` with the consumer key. */
  readonly s?: string | undefined;
}

/** An envelope ready for SendMessage(Batch) / Publish(Batch). */
export interface WireMessage {
  readonly body: string;
  readonly attributes: Record<string, MessageAttribute>;
  /** Bytes that count against the SQS/SNS size limit: body plus attribute names, types, values. */
  readonly size: number;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
// Characters SQS refuses in a message body (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html).
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[^\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const ATTRIBUTE_NAME = /^(?!aws\.|amazon\.)(?!.*\.\.)[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}[A-Za-z0-9_-]$|^[A-Za-z0-9_-]$/i;
const NOT_MIRRORED = new Set<string>([HEADERS.contentType, HEADERS.traceparent, HEADERS.tracestate, META_ATTRIBUTE, BODY_ATTRIBUTE]);

function encodeBody(bytes: Uint8Array, binaryAttribute: boolean): { body: string; e?: 'b64' | 'empty' | 'bin' } {
  if (bytes.byteLength === 0) return { body: EMPTY_BODY, e: 'empty' };
  try {
    const text = strictUtf8.decode(bytes);
    if (!FORBIDDEN.test(text)) return { body: text };
  } catch {
    // not UTF-8: fall through to a binary encoding
  }
  if (binaryAttribute) return { body: EMPTY_BODY, e: 'bin' };
  return { body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'), e: 'b64' };
}

function attributeSize(name: string, attribute: MessageAttribute): number {
  return Buffer.byteLength(name) + Buffer.byteLength(attribute.DataType) + Buffer.byteLength(attribute.StringValue ?? '') + (attribute.BinaryValue?.byteLength ?? 0);
}

/** Extra wire facts: when a long-delayed copy is due, and attempts already made. */
export interface WireExtras {
  readonly due?: number | undefined;
  readonly attempts?: number | undefined;
}

function seal(key: Uint8Array, id: string, attempts: number, due: number | undefined): string {
  return createHmac('sha256', key).update(`${id}\n${attempts}\n${due ?? ''}`).digest().subarray(0, 16).toString('base64url');
}

function sealHolds(key: Uint8Array | undefined, meta: WireMeta, attempts: number, due: number | undefined): boolean {
  if (key === undefined || typeof meta.s !== 'string') return false;
  const expected = Buffer.from(seal(key, meta.id, attempts, due));
  const given = Buffer.from(meta.s);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** How a message is sent. */
export interface WireOptions {
  /**
   * Carry a binary body raw in a Binary attribute rather than base64 in the body (a third
   * smaller). For SQS sends only: moto's SNS drops raw-delivered messages with Binary attributes.
   */
  readonly binaryAttribute?: boolean | undefined;
}

/**
 * Encodes an envelope for SQS or SNS (see the module comment for the layout). Attempts are
 * written only with a `key` to seal them (the consumer's own re-sends).
 */
export function toWire(envelope: Envelope, extras: WireExtras = {}, key?: Uint8Array, options: WireOptions = {}): WireMessage {
  const { body, e } = encodeBody(envelope.body, options.binaryAttribute === true);
  const meta: WireMeta = {
    v: 1,
    id: envelope.id,
    ts: envelope.timestamp,
    ...(envelope.key !== undefined ? { k: envelope.key } : {}),
    h: { ...envelope.headers },
    ...(e ? { e } : {}),
    ...(extras.due !== undefined ? { due: extras.due } : {}),
    ...(extras.attempts && key ? { a: extras.attempts, s: seal(key, envelope.id, extras.attempts, extras.due) } : {}),
  };
  const attributes: Record<string, MessageAttribute> = { [META_ATTRIBUTE]: { DataType: 'String', StringValue: JSON.stringify(meta) } };
  let count = 1;
  if (e === 'bin') {
    attributes[BODY_ATTRIBUTE] = { DataType: 'Binary', BinaryValue: envelope.body };
    count += 1;
  }
  for (const [name, value] of Object.entries(envelope.headers)) {
    if (count >= MAX_ATTRIBUTES) break;
    if (value.length === 0 || NOT_MIRRORED.has(name) || name.toLowerCase().startsWith(RESERVED_HEADER_PREFIX) || !ATTRIBUTE_NAME.test(name)) continue;
    attributes[name] = { DataType: 'String', StringValue: value };
    count += 1;
  }
  let size = Buffer.byteLength(body);
  for (const [name, attribute] of Object.entries(attributes)) size += attributeSize(name, attribute);
  return { body, attributes, size };
}

/** What the consumer learns from one received message. */
export interface DecodedMessage {
  readonly envelope: Envelope;
  readonly due: number | undefined;
  /** Deliveries made before the copy received now was sent. */
  readonly priorAttempts: number;
  /** Whether the message carried mqkit metadata (false: written by another producer). */
  readonly native: boolean;
}

export interface ReceivedMessage {
  readonly MessageId?: string | undefined;
  readonly Body?: string | undefined;
  readonly Attributes?: Partial<Record<string, string>> | undefined;
  readonly MessageAttributes?: Record<string, { StringValue?: string | undefined; BinaryValue?: Uint8Array | undefined; DataType?: string | undefined }> | undefined;
}

function isMeta(value: unknown): value is WireMeta {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Record<string, unknown>;
  return typeof m.id === 'string' && typeof m.ts === 'number' && typeof m.h === 'object' && m.h !== null;
}

/** What {@link fromWire} checks the `mqkit` attribute against. */
export interface DecodeOptions {
  /** Key the consumer seals attempts with; without it no carried attempts are trusted. */
  readonly key?: Uint8Array | undefined;
  /** @default Date.now() */
  readonly now?: number | undefined;
}

/**
 * Decodes a received message. Messages without (valid) mqkit metadata, e.g. from another
 * producer, still decode: id = SQS MessageId, headers = String attributes, timestamp = SentTimestamp.
 * Control fields of the metadata are validated (see the module comment).
 */
export function fromWire(message: ReceivedMessage, topic: string, options: DecodeOptions = {}): DecodedMessage {
  const bodyText = message.Body ?? '';
  const raw = message.MessageAttributes?.[META_ATTRIBUTE]?.StringValue;
  let meta: WireMeta | undefined;
  if (raw !== undefined) {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (isMeta(parsed)) meta = parsed;
    } catch {
      meta = undefined;
    }
  }
  if (!meta) {
    const headers: Record<string, string> = {};
    for (const [name, attribute] of Object.entries(message.MessageAttributes ?? {})) {
      if (attribute.StringValue !== undefined && name !== META_ATTRIBUTE) headers[name] = attribute.StringValue;
    }
    const sent = Number(message.Attributes?.SentTimestamp);
    return {
      envelope: {
        id: message.MessageId ?? '',
        topic,
        key: message.Attributes?.MessageGroupId,
        headers,
        body: new Uint8Array(Buffer.from(bodyText, 'utf8')),
        timestamp: Number.isFinite(sent) ? sent : Date.now(),
      },
      due: undefined,
      priorAttempts: 0,
      native: false,
    };
  }
  let body: Uint8Array;
  const rawBody = message.MessageAttributes?.[BODY_ATTRIBUTE]?.BinaryValue;
  if (meta.e === 'empty' && bodyText === EMPTY_BODY) body = new Uint8Array(0);
  else if (meta.e === 'bin' && bodyText === EMPTY_BODY && rawBody !== undefined) body = rawBody;
  else if (meta.e === 'b64') body = new Uint8Array(Buffer.from(bodyText, 'base64'));
  else body = new Uint8Array(Buffer.from(bodyText, 'utf8'));
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(meta.h)) if (typeof value === 'string') headers[name] = value;
  const now = options.now ?? Date.now();
  const due = typeof meta.due === 'number' && Number.isFinite(meta.due) && meta.due <= now + MAX_DUE_AHEAD_MS ? meta.due : undefined;
  const attempts = typeof meta.a === 'number' && Number.isSafeInteger(meta.a) && meta.a > 0 ? meta.a : 0;
  return {
    envelope: { id: meta.id, topic, key: typeof meta.k === 'string' ? meta.k : undefined, headers, body, timestamp: meta.ts },
    due,
    // The seal covers the due time as written, so a copy's count holds only with its own due time.
    priorAttempts: attempts > 0 && sealHolds(options.key, meta, attempts, typeof meta.due === 'number' ? meta.due : undefined) ? attempts : 0,
    native: true,
  };
}

/**
 * FIFO deduplication id from the message id: SQS allows 128 characters of
 * [A-Za-z0-9!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~]; other ids are hashed.
 */
export function dedupId(id: string, hop = 0): string {
  const candidate = hop > 0 ? `${id}#${hop}` : id;
  if (candidate.length <= 128 && /^[\x21-\x7E]+$/.test(candidate)) return candidate;
  return `h:${sha256(candidate)}`;
}

/** FIFO message group: the key, else the message id (no ordering needed, most parallelism). */
export function messageGroupId(envelope: Envelope): string {
  const group = envelope.key ?? envelope.id;
  if (group.length <= 128 && /^[\x21-\x7E]+$/.test(group)) return group;
  return `h:${sha256(group)}`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
