/**
 * Envelope ↔ Kafka record mapping. The message id and the emulated delivery time travel as
 * headers under the reserved `x-mqkit-` prefix; key, body, headers and timestamp map natively.
 */
import { envelopeSizeBound, WIRE_HEADERS, type Envelope } from '@mqkit/core/driver';
import { MAX_DELAY_MS } from './capabilities.ts';
import type { FetchedRecord, ProduceBatch, ProduceRecord } from './client/seam.ts';

/** Kafka header carrying {@link Envelope.id}. */
export const ID_HEADER = WIRE_HEADERS.id;
/** Kafka header carrying the epoch ms before which a delayed message must not be handled. */
export const DELIVER_AT_HEADER = WIRE_HEADERS.deliverAt;

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

/** Per-record framing Kafka adds around key, value and headers (lengths, attributes, deltas). */
const RECORD_OVERHEAD = 64;

/** Bytes the adapter's own headers add at most (the id's value is counted by envelopeSizeBound). */
const OWN_HEADERS_BOUND = 3 * (ID_HEADER.length + DELIVER_AT_HEADER.length + 16);

/** At least the encoded size of an envelope's record. */
function recordBound(envelope: Envelope): number {
  return envelopeSizeBound(envelope) + OWN_HEADERS_BOUND + RECORD_OVERHEAD;
}

/** Envelopes of one topic as a {@link ProduceBatch}: records built when the producer writes them. */
export function envelopeBatch(envelopes: readonly Envelope[], now: number): ProduceBatch {
  let bytes = 0;
  for (const envelope of envelopes) bytes += recordBound(envelope);
  const build = (part: readonly Envelope[]): ProduceRecord[] => part.map((e) => toRecord(e, now));
  return {
    bytes,
    records: () => build(envelopes),
    chunks(maxBytes) {
      if (bytes <= maxBytes) return [build(envelopes)];
      const chunks: ProduceRecord[][] = [];
      let start = 0;
      let size = 0;
      envelopes.forEach((envelope, i) => {
        const bound = recordBound(envelope);
        if (i > start && size + bound > maxBytes) {
          chunks.push(build(envelopes.slice(start, i)));
          start = i;
          size = 0;
        }
        size += bound;
      });
      chunks.push(build(envelopes.slice(start)));
      return chunks;
    },
  };
}

/** A header value as text; repeated headers keep the last value. */
function headerText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  // toString() without an encoding argument is Node's fast UTF-8 path (no encoding lookup).
  if (value instanceof Uint8Array) return Buffer.isBuffer(value) ? value.toString() : Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString();
  if (Array.isArray(value)) return headerText(value.at(-1));
  return undefined;
}

/** How far a producer's clock may run ahead of the consumer's without its delay being refused. */
export const CLOCK_SKEW_MS = 60_000;

/**
 * The emulated delivery time of a fetched record (epoch ms; 0 = now). Any producer can write the
 * header, so a value no mqkit publish could have produced (past `now` + the longest delay + clock
 * skew, or not a number) is ignored and the record delivered now: a forged header can hold a
 * record (and its partition's commit position) for at most that long.
 */
export function deliverAtOf(record: FetchedRecord, now: number = Date.now()): number {
  const raw = record.headers?.[DELIVER_AT_HEADER];
  if (raw === undefined) return 0;
  const at = Number(headerText(raw));
  if (!Number.isSafeInteger(at) || at <= now || at > now + MAX_DELAY_MS + CLOCK_SKEW_MS) return 0;
  return at;
}

/**
 * Decodes a fetched record (the emulated delivery time is {@link deliverAtOf}). Records from
 * other producers (no id header) get a stable id from their position, so deduplication still
 * works on redelivery. Runs once per consumed message: no intermediate arrays or objects.
 */
export function fromRecord(topic: string, partition: number, record: FetchedRecord): Envelope {
  const headers: Record<string, string> = {};
  let id: string | undefined;
  const raw = record.headers;
  if (raw) {
    for (const name in raw) {
      const value = headerText(raw[name]);
      if (value === undefined) continue;
      if (name === ID_HEADER) id = value;
      else if (name !== DELIVER_AT_HEADER) headers[name] = value;
    }
  }
  const key = record.key && record.key.length > 0 ? record.key.toString() : undefined;
  // A view, not a copy: the fetch response it points into lives as long as the delivery does.
  const value = record.value;
  const body = value ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : new Uint8Array(0);
  const timestamp = Number(record.timestamp);
  return {
    id: id ?? `${topic}:${partition}:${record.offset}`,
    topic,
    key,
    headers,
    body,
    timestamp: Number.isFinite(timestamp) ? timestamp : Date.now(),
  };
}
