import { decodeFields, encodeFields } from '@mqkit/redis-streams';
import { describe, expect, it } from 'vitest';
import { mqkitBody, mqkitFields } from './redis.ts';

const asBuffers = (fields: Array<string | Buffer>): Buffer[] => fields.map((f) => (Buffer.isBuffer(f) ? f : Buffer.from(f)));

describe('the raw `+ mqkit fields` rows write what @mqkit/redis-streams writes', () => {
  const payload = Buffer.from([0, 1, 2, 255]);

  it('same field names in the same order as encodeFields() of a bytesCodec publish', () => {
    const adapter = encodeFields({ id: 'x', topic: 't', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(payload), timestamp: 1 });
    const raw = mqkitFields(payload);
    const names = (f: Array<string | Buffer>) => f.filter((_, i) => i % 2 === 0).map(String);
    expect(names(raw)).toEqual(names(adapter));
  });

  it('the adapter decodes a raw entry to the same envelope, and mqkitBody finds the body', () => {
    const fields = asBuffers(mqkitFields(payload));
    const envelope = decodeFields('t', '1-0', fields);
    expect(envelope.headers).toEqual({ 'content-type': 'application/octet-stream' });
    expect([...envelope.body]).toEqual([...payload]);
    expect(envelope.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(mqkitBody(fields)?.equals(payload)).toBe(true);
  });
});
