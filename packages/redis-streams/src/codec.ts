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

/**
 * An entry's envelope, read leniently so that no foreign entry blocks a group (no id: the entry
 * id, and so on). Runs once per consumed message: one pass over the fields, no map or closure.
 */
export function decodeFields(topic: string, entryId: string, fields: readonly Buffer[]): Envelope {
  let id: string | undefined;
  let key: string | undefined;
  let timestampText: string | undefined;
  let headersText: string | undefined;
  let contentType: string | undefined;
  let body: Buffer | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1]!;
    switch (fields[i]!.toString()) {
      case 'id':
        id = value.toString('utf8');
        break;
      case 'key':
        key = value.toString('utf8');
        break;
      case 'timestamp':
        timestampText = value.toString('utf8');
        break;
      case 'headers':
        headersText = value.toString('utf8');
        break;
      case HEADERS.contentType:
        contentType = value.toString('utf8');
        break;
      case 'body':
        body = value;
        break;
    }
  }
  const headers: Record<string, string> = {};
  if (headersText !== undefined) {
    try {
      const parsed: unknown = JSON.parse(headersText);
      if (parsed && typeof parsed === 'object') for (const [name, v] of Object.entries(parsed)) if (typeof v === 'string') headers[name] = v;
    } catch {
      // unreadable headers: none
    }
  }
  if (contentType !== undefined) headers[HEADERS.contentType] = contentType;
  const timestamp = Number(timestampText ?? Number.NaN);
  const bytes = body ? new Uint8Array(body.buffer, body.byteOffset, body.byteLength) : new Uint8Array(0);
  return { id: id || entryId, topic, key, headers, body: bytes, timestamp: Number.isFinite(timestamp) ? timestamp : Number(entryId.split('-')[0]) };
}
