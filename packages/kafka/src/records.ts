/**
 * Envelope ↔ Kafka record mapping. The message id and the emulated delivery time travel as
 * headers under the reserved `x-mqkit-` prefix; key, body, headers and timestamp map natively.
 */
import type { Envelope } from '@mqkit/core/driver';
import type { FetchedRecord, ProduceRecord } from './client/seam.ts';

/** Kafka header carrying {@link Envelope.id}. */
export const ID_HEADER = 'x-mqkit-id';
/** Kafka header carrying the epoch ms before which a delayed message must not be handled. */
export const DELIVER_AT_HEADER = 'x-mqkit-deliver-at';

const ADAPTER_HEADERS = new Set([ID_HEADER, DELIVER_AT_HEADER]);

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The record to produce for an envelope; `now` anchors an emulated delay. */
export function toRecord(envelope: Envelope, now: number = Date.now()): ProduceRecord {
  // Strings, not Buffers: the client encodes them straight into the request (no allocation each).
  const headers: Record<string, string> = { ...envelope.headers, [ID_HEADER]: envelope.id };
  if (envelope.delayMs !== undefined && envelope.delayMs > 0) headers[DELIVER_AT_HEADER] = String(now + envelope.delayMs);
  return {
    key: envelope.key === undefined ? null : Buffer.from(envelope.key, 'utf8'),
    value: toBuffer(envelope.body),
    headers,
    timestamp: String(envelope.timestamp),
  };
}

function headerText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return headerText(value.at(-1));
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'string') return value;
  return undefined;
}

/** A fetched record as core sees it, plus the emulated delivery time (0 = now). */
export interface DecodedRecord {
  readonly envelope: Envelope;
  readonly deliverAt: number;
}

/**
 * Decodes a fetched record. Records from other producers (no id header) get a stable id from
 * their position, so deduplication still works on redelivery.
 */
export function fromRecord(topic: string, partition: number, record: FetchedRecord): DecodedRecord {
  const headers: Record<string, string> = {};
  let id: string | undefined;
  let deliverAt = 0;
  for (const [name, raw] of Object.entries(record.headers)) {
    const value = headerText(raw);
    if (value === undefined) continue;
    if (name === ID_HEADER) id = value;
    else if (name === DELIVER_AT_HEADER) deliverAt = Number(value) || 0;
    if (!ADAPTER_HEADERS.has(name)) headers[name] = value;
  }
  const key = record.key && record.key.length > 0 ? record.key.toString('utf8') : undefined;
  // A view, not a copy: the fetch response it points into lives as long as the delivery does.
  const body = record.value ? new Uint8Array(record.value.buffer, record.value.byteOffset, record.value.byteLength) : new Uint8Array(0);
  const timestamp = Number(record.timestamp);
  const envelope: Envelope = {
    id: id ?? `${topic}:${partition}:${record.offset}`,
    topic,
    key,
    headers,
    body,
    timestamp: Number.isFinite(timestamp) ? timestamp : Date.now(),
  };
  return { envelope, deliverAt };
}
