/**
 * The mapping between an mqkit {@link Envelope} and AMQP 0-9-1 message properties.
 *
 * Native fields: `messageId` = id, `timestamp` = seconds (AMQP has no finer unit), `contentType`
 * = the `content-type` header (not repeated in the table), `deliveryMode` 2 (persistent).
 * Everything AMQP cannot carry exactly travels in `x-mqkit-*` headers that are stripped again on
 * receipt: the key (routing keys are rewritten by dead-lettering), the millisecond timestamp, and
 * the count of deliveries a retried copy already had.
 */
import type { Envelope } from '@mqkit/core/driver';
import type { MessageProperties, Options } from 'amqplib';

/** Headers the adapter writes for itself; never shown to handlers. */
export const WIRE_HEADERS = {
  key: 'x-mqkit-key',
  timestamp: 'x-mqkit-ts',
  /** Deliveries the message had before it was re-published into a delay queue. */
  priorAttempts: 'x-mqkit-prior-attempts',
} as const;

const TRANSPORT_HEADERS = new Set<string>([WIRE_HEADERS.key, WIRE_HEADERS.timestamp, WIRE_HEADERS.priorAttempts]);

/** Headers RabbitMQ adds itself (dead-lettering, quorum delivery count, federation/shovel). */
function isBrokerHeader(name: string): boolean {
  return (
    name === 'x-death' ||
    name === 'x-delivery-count' ||
    name.startsWith('x-first-death-') ||
    name.startsWith('x-last-death-') ||
    name === 'x-received-from' ||
    name === 'CC' ||
    name === 'BCC'
  );
}

/** AMQP publish options for `envelope`. `priorAttempts` is set when re-publishing a retry. */
export function toPublishOptions(envelope: Envelope, priorAttempts?: number): Options.Publish {
  // content-type travels once, as the native property (restored into the headers on receipt).
  const headers: Record<string, string | number> = {};
  for (const name in envelope.headers) if (name !== 'content-type') headers[name] = envelope.headers[name]!;
  headers[WIRE_HEADERS.timestamp] = envelope.timestamp;
  if (envelope.key !== undefined) headers[WIRE_HEADERS.key] = envelope.key;
  if (priorAttempts !== undefined && priorAttempts > 0) headers[WIRE_HEADERS.priorAttempts] = priorAttempts;
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
 * exchange a message arrives through changes when it passes a delay or dead-letter hop).
 */
export function fromDelivery(topic: string, content: Buffer, properties: MessageProperties, redelivered: boolean): Received {
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
  const ms = headerNumber(raw[WIRE_HEADERS.timestamp]);
  const seconds = headerNumber(properties.timestamp);
  const timestamp = ms ?? (seconds !== undefined ? seconds * 1000 : Date.now());
  const id = typeof properties.messageId === 'string' && properties.messageId !== '' ? properties.messageId : `amqp-${timestamp}-${content.byteLength}`;
  const count = headerNumber(raw['x-delivery-count']);
  return {
    envelope: {
      id,
      topic,
      key,
      headers,
      body: new Uint8Array(content.buffer, content.byteOffset, content.byteLength),
      timestamp,
    },
    priorAttempts: headerNumber(raw[WIRE_HEADERS.priorAttempts]) ?? 0,
    deliveryCount: count ?? (redelivered ? 1 : 0),
  };
}
