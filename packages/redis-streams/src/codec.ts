/**
 * Envelope ↔ entry fields, readable by raw clients: `id`, `timestamp` (epoch ms), `key` and `content-type` (when set),
 * `headers` (JSON of the others, when any), `body` (bytes as they are: Redis strings are binary-safe, 0 bytes too).
 */
import { HEADERS, type Envelope } from '@mqkit/core/driver';

/** The XADD field/value arguments of an envelope. */
export function encodeFields(envelope: Envelope): Array<string | Buffer> {
  const { [HEADERS.contentType]: contentType, ...rest } = envelope.headers;
  const out: Array<string | Buffer> = ['id', envelope.id, 'timestamp', String(envelope.timestamp)];
  if (envelope.key !== undefined) out.push('key', envelope.key);
  if (contentType !== undefined) out.push(HEADERS.contentType, contentType);
  if (Object.keys(rest).length > 0) out.push('headers', JSON.stringify(rest));
  out.push('body', Buffer.from(envelope.body.buffer, envelope.body.byteOffset, envelope.body.byteLength));
  return out;
}

/** An entry's envelope, read leniently so that no foreign entry blocks a group (no id: the entry id, and so on). */
export function decodeFields(topic: string, entryId: string, fields: readonly Buffer[]): Envelope {
  const map = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!.toString(), fields[i + 1]!);
  const text = (name: string): string | undefined => map.get(name)?.toString('utf8');
  let headers: Record<string, string> = {};
  try {
    const parsed: unknown = JSON.parse(text('headers') ?? '{}');
    if (parsed && typeof parsed === 'object') headers = Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    // unreadable headers: none
  }
  const contentType = text(HEADERS.contentType);
  if (contentType !== undefined) headers[HEADERS.contentType] = contentType;
  const body = map.get('body');
  const timestamp = Number(text('timestamp') ?? Number.NaN);
  const bytes = body ? new Uint8Array(body.buffer, body.byteOffset, body.byteLength) : new Uint8Array(0);
  return { id: text('id') || entryId, topic, key: text('key'), headers, body: bytes, timestamp: Number.isFinite(timestamp) ? timestamp : Number(entryId.split('-')[0]) };
}
