import { HEADERS, type Envelope } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { decodeFields, encodeFields } from './codec.ts';

const asBuffers = (fields: Array<string | Buffer>): Buffer[] => fields.map((f) => (Buffer.isBuffer(f) ? f : Buffer.from(f)));

describe('redis-streams codec', () => {
  it('round-trips id, key, timestamp, headers (content type as its own field) and a binary body', () => {
    const body = new Uint8Array(256).map((_, i) => i);
    const envelope: Envelope = { id: 'm-1', topic: 't', key: 'k ✓', headers: { [HEADERS.contentType]: 'application/octet-stream', tenant: 'acmé' }, body, timestamp: 1234 };
    const fields = encodeFields(envelope);
    expect(fields.filter((_, i) => i % 2 === 0)).toEqual(['id', 'timestamp', 'key', 'content-type', 'headers', 'body']);
    expect(decodeFields('t', '1-0', asBuffers(fields))).toEqual(envelope);
  });

  it('round-trips a 0-byte body and no key, no headers', () => {
    const envelope: Envelope = { id: 'e', topic: 't', key: undefined, headers: {}, body: new Uint8Array(0), timestamp: 5 };
    const fields = encodeFields(envelope);
    expect(fields.filter((_, i) => i % 2 === 0)).toEqual(['id', 'timestamp', 'body']);
    expect(decodeFields('t', '1-0', asBuffers(fields))).toEqual(envelope);
  });

  it('reads a foreign entry leniently: entry id as id, its time as timestamp, bad headers ignored', () => {
    const got = decodeFields('t', '1700000000000-3', asBuffers(['headers', '{not json', 'other', 'x']));
    expect(got).toEqual({ id: '1700000000000-3', topic: 't', key: undefined, headers: {}, body: new Uint8Array(0), timestamp: 1700000000000 });
  });
});
