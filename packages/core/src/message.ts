/**
 * The message model shared by the portable API and the drivers.
 */

/** Header names mqkit itself writes. Application headers must not start with `x-mqkit-`. */
export const HEADERS = {
  contentType: 'content-type',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  /** Why a message was dead-lettered: `handler-failed`, `decode-failed`, or the reason given. */
  deadLetterReason: 'x-mqkit-dead-letter-reason',
  /** The last error's message, truncated. */
  deadLetterError: 'x-mqkit-error',
  /** How many deliveries the message had when it was dead-lettered. */
  deadLetterAttempts: 'x-mqkit-attempts',
  /** The topic the message was consumed from. */
  originalTopic: 'x-mqkit-original-topic',
  /** The consumer group that gave up on it. */
  originalGroup: 'x-mqkit-original-group',
  /** ISO time it was dead-lettered. */
  deadLetteredAt: 'x-mqkit-dead-lettered-at',
} as const;

/**
 * Header (or user-property) names adapters write for themselves where the broker has no native
 * field for an envelope's id, key, millisecond timestamp or delivery facts. One list, so that the
 * same fact has the same name on every broker; each adapter writes the ones it needs and its
 * decoder strips them again: handlers never see them.
 */
export const WIRE_HEADERS = {
  id: 'x-mqkit-id',
  key: 'x-mqkit-key',
  /** Epoch ms the message was published. */
  timestamp: 'x-mqkit-timestamp',
  /** Epoch ms a delayed publish is due. */
  deliverAt: 'x-mqkit-deliver-at',
  /** Deliveries a re-published copy already had. */
  priorAttempts: 'x-mqkit-prior-attempts',
} as const;

/**
 * Names earlier releases wrote in place of a {@link WIRE_HEADERS} name. Messages already on a
 * broker may carry them, so decoders still read (and strip) them.
 */
export const LEGACY_WIRE_HEADERS = {
  /** The RabbitMQ adapter's timestamp before it took {@link WIRE_HEADERS.timestamp}. */
  timestamp: 'x-mqkit-ts',
} as const;

/** Prefix reserved for headers mqkit and its adapters write. */
export const RESERVED_HEADER_PREFIX = 'x-mqkit-';

/**
 * A message in its wire form, as drivers send and receive it. The payload is already encoded.
 */
export interface Envelope {
  /** Producer-made id, stable across retries: the deduplication key. */
  readonly id: string;
  /** Destination topic. */
  readonly topic: string;
  /** Ordering / partitioning key. */
  readonly key?: string | undefined;
  /** String headers, including `content-type` and W3C trace context. */
  readonly headers: Readonly<Record<string, string>>;
  /** Encoded payload. */
  readonly body: Uint8Array;
  /** Epoch milliseconds at which the producer created it. */
  readonly timestamp: number;
  /** Deliver no earlier than this many milliseconds after it was accepted. */
  readonly delayMs?: number | undefined;
}

/**
 * At least {@link envelopeSize}, without encoding anything: a UTF-16 unit is at most 3 UTF-8
 * bytes. Checking this first spares the exact sizing of every message that is far from a limit.
 */
export function envelopeSizeBound(envelope: Envelope): number {
  let chars = envelope.id.length + (envelope.key?.length ?? 0);
  const { headers } = envelope;
  for (const name in headers) chars += name.length + headers[name]!.length;
  return envelope.body.byteLength + 3 * chars;
}

/** Size in bytes that counts against a broker's message limit: body, key and headers. */
export function envelopeSize(envelope: Envelope): number {
  let size = envelope.body.byteLength + Buffer.byteLength(envelope.id);
  if (envelope.key !== undefined) size += Buffer.byteLength(envelope.key);
  const { headers } = envelope;
  for (const name in headers) size += Buffer.byteLength(name) + Buffer.byteLength(headers[name]!);
  return size;
}
