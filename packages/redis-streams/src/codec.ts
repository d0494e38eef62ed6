/**
 * Envelope ↔ stream entry fields. One field per envelope part, readable by raw clients:
 * `id`, `key` (absent without a key), `timestamp` (epoch ms), `content-type`, `headers` (JSON of
 * the other headers, absent when none) and `body` (the encoded payload, bytes as they are: Redis
 * strings are binary-safe, so 0-byte and binary bodies round-trip).
 */
import { HEADERS, type Envelope } from '@mqkit/core/driver';

export const FIELDS = { id: 'id', key: 'key', timestamp: 'timestamp', contentType: HEADERS.contentType, headers: 'headers', body: 'body' } as const;

/** The XADD field/value arguments of an envelope. */
export function encodeFields(envelope: Envelope): Array<string | Buffer> {
  const { [HEADERS.contentType]: contentType, ...rest } = envelope.headers;
  const out: Array<string | Buffer> = [FIELDS.id, envelope.id, FIELDS.timestamp, String(envelope.timestamp)];
  if (envelope.key !== undefined) out.push(FIELDS.key, envelope.key);
  if (contentType !== undefined) out.push(FIELDS.contentType, contentType);
  if (Object.keys(rest).length > 0) out.push(FIELDS.headers, JSON.stringify(rest));
  out.push(FIELDS.body, Buffer.from(envelope.body.buffer, envelope.body.byteOffset, envelope.body.byteLength));
  return out;
}

/**
 * The envelope of a stream entry. Lenient, so that one odd entry (a foreign producer's) never
 * blocks a group: a missing id is the entry id, a missing timestamp the entry id's time, missing
 * or unreadable headers none, a missing body 0 bytes.
 */
export function decodeFields(topic: string, entryId: string, fields: readonly Buffer[]): Envelope {
  const map = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!.toString(), fields[i + 1]!);
  const text = (name: string): string | undefined => map.get(name)?.toString('utf8');
  let headers: Record<string, string> = {};
  try {
    const parsed: unknown = JSON.parse(text(FIELDS.headers) ?? '{}');
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      headers = Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'));
    }
  } catch {
    // unreadable headers: none
  }
  const contentType = text(FIELDS.contentType);
  if (contentType !== undefined) headers[HEADERS.contentType] = contentType;
  const timestamp = Number(text(FIELDS.timestamp));
  const body = map.get(FIELDS.body);
  return {
    id: text(FIELDS.id) || entryId,
    topic,
    key: text(FIELDS.key),
    headers,
    body: body ? new Uint8Array(body.buffer, body.byteOffset, body.byteLength) : new Uint8Array(0),
    timestamp: Number.isFinite(timestamp) && text(FIELDS.timestamp) !== undefined ? timestamp : Number(entryId.split('-')[0]),
  };
}
