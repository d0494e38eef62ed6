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

/** An entry's envelope, in one pass; read leniently so that no foreign entry blocks a group (no id: the entry id, …). */
export function decodeFields(topic: string, entryId: string, fields: readonly Buffer[]): Envelope {
  let id: string | undefined, key: string | undefined, headersJson: string | undefined, contentType: string | undefined;
  let timestamp: number | undefined, body: Buffer | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!.toString();
    const value = fields[i + 1]!;
    if (name === 'body') body = value;
    else if (name === 'id') id = value.toString();
    else if (name === 'key') key = value.toString();
    else if (name === 'timestamp') timestamp = Number(value.toString());
    else if (name === 'headers') headersJson = value.toString();
    else if (name === HEADERS.contentType) contentType = value.toString();
  }
  const headers: Record<string, string> = {};
  try {
    const parsed: unknown = headersJson === undefined ? undefined : JSON.parse(headersJson);
    if (parsed && typeof parsed === 'object') for (const [name, v] of Object.entries(parsed)) if (typeof v === 'string') headers[name] = v;
  } catch {
    // unreadable headers: none
  }
  if (contentType !== undefined) headers[HEADERS.contentType] = contentType;
  const bytes = body ? new Uint8Array(body.buffer, body.byteOffset, body.byteLength) : new Uint8Array(0);
  return { id: id || entryId, topic, key, headers, body: bytes, timestamp: Number.isFinite(timestamp) ? timestamp! : Number(entryId.split('-')[0]) };
}
