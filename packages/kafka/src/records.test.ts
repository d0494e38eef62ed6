import { describe, expect, it } from 'vitest';
import type { Envelope } from '@mqkit/core/driver';
import { MAX_DELAY_MS } from './capabilities.ts';
import { DELIVER_AT_HEADER, deliverAtOf, envelopeBatch, fromRecord, ID_HEADER, toRecord } from './records.ts';

const envelope: Envelope = {
  id: 'order-1',
  topic: 'orders',
  key: 'customer-7',
  headers: { 'content-type': 'application/json', traceparent: '00-abc-def-01', tenant: 'äcme' },
  body: new Uint8Array([0, 1, 2, 255]),
  timestamp: 1_700_000_000_000,
};

/** What a fetch returns: header values as Buffers. */
function asFetched(headers: Readonly<Record<string, Buffer | string>>): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)]));
}

describe('records', () => {
  it('round-trips id, key, headers, body and timestamp', () => {
    const record = toRecord(envelope);
    expect(record.headers[ID_HEADER]).toBe('order-1');
    expect(record.headers[DELIVER_AT_HEADER]).toBeUndefined();
    const fetched = { ...record, offset: '41', headers: asFetched(record.headers) };
    const back = fromRecord('orders', 2, fetched);
    expect(deliverAtOf(fetched)).toBe(0);
    expect(back.id).toBe('order-1');
    expect(back.key).toBe('customer-7');
    expect(back.headers).toEqual(envelope.headers);
    expect(Buffer.from(back.body).equals(Buffer.from(envelope.body))).toBe(true);
    expect(back.timestamp).toBe(envelope.timestamp);
  });

  it('carries an emulated delay as an absolute due time', () => {
    const record = toRecord({ ...envelope, delayMs: 5_000 }, 1_000);
    expect(record.headers[DELIVER_AT_HEADER]).toBe('6000');
    expect(deliverAtOf({ ...record, offset: '0', headers: asFetched(record.headers) }, 1_000)).toBe(6_000);
    expect(deliverAtOf({ ...record, offset: '0' }, 1_000)).toBe(6_000); // string values too
    expect(deliverAtOf({ ...record, offset: '0' }, 6_000)).toBe(0); // due: now
  });

  it('ignores a forged or garbled deliver-at: never parks a record beyond the longest delay (#16 defect 12)', () => {
    const now = 1_000_000;
    const at = (value: string) => deliverAtOf({ offset: '0', key: null, value: null, headers: { [DELIVER_AT_HEADER]: Buffer.from(value) }, timestamp: '1' }, now);
    expect(at(String(now + MAX_DELAY_MS))).toBe(now + MAX_DELAY_MS); // the longest legitimate delay
    expect(at(String(now + 365 * 24 * 3_600_000))).toBe(0); // a year: forged, delivered now
    expect(at('8.64e15')).toBe(0);
    expect(at('Infinity')).toBe(0);
    expect(at('-5')).toBe(0);
    expect(at('soon')).toBe(0);
  });

  it('round-trips an empty (0-byte) body as 0 bytes, not null (#16 defect 5)', () => {
    const record = toRecord({ ...envelope, body: new Uint8Array(0) });
    expect(record.value).toBeInstanceOf(Buffer);
    expect(record.value.byteLength).toBe(0);
    const back = fromRecord('orders', 0, { ...record, offset: '0', headers: asFetched(record.headers) });
    expect(back.body).toBeInstanceOf(Uint8Array);
    expect(back.body.byteLength).toBe(0);
  });

  it('keeps mqkit dead-letter headers but hides the adapter ones', () => {
    const record = toRecord({ ...envelope, headers: { 'x-mqkit-attempts': '3' }, delayMs: 10 });
    const back = fromRecord('orders', 0, { ...record, offset: '0', headers: asFetched(record.headers) });
    expect(back.headers).toEqual({ 'x-mqkit-attempts': '3' });
  });

  it('gives foreign records (no id header, no key) a stable position id', () => {
    const back = fromRecord('orders', 1, { offset: '9', key: null, value: null, headers: { a: Buffer.from('b') }, timestamp: '5' });
    expect(back.id).toBe('orders:1:9');
    expect(back.key).toBeUndefined();
    expect(back.body.byteLength).toBe(0);
    expect(back.headers).toEqual({ a: 'b' });
    expect(fromRecord('orders', 1, { offset: '9', key: null, value: null, timestamp: '5' }).headers).toEqual({});
  });

  it('takes the last value of a repeated header and skips empty ones', () => {
    const back = fromRecord('orders', 0, {
      offset: '1',
      key: Buffer.from('k'),
      value: Buffer.from('v'),
      headers: { [ID_HEADER]: Buffer.from('m-1'), tenant: [Buffer.from('a'), Buffer.from('b')], gone: undefined },
      timestamp: '7',
    });
    expect(back.id).toBe('m-1');
    expect(back.headers).toEqual({ tenant: 'b' });
    expect(back.key).toBe('k');
  });
});

describe('envelopeBatch', () => {
  it('builds records only when asked, and bounds their size from above', () => {
    const later: Record<string, string> = {};
    const envelopes: Envelope[] = [
      { id: 'a', topic: 't', key: 'ключ', headers: { 'content-type': 'text/plain; charset=utf-8', note: '✓✓✓' }, body: new Uint8Array(100), timestamp: 5, delayMs: 1_000 },
      { id: 'b', topic: 't', headers: later, body: new Uint8Array(0), timestamp: 6 },
    ];
    const batch = envelopeBatch(envelopes, 1_000_000);
    later['late'] = 'x'; // not built yet: the records see it
    const records = batch.records();
    expect(records).toHaveLength(2);
    expect(records[1]!.headers['late']).toBe('x');
    expect(records[0]!.headers[DELIVER_AT_HEADER]).toBe('1001000');
    const exact = records.reduce((n, r) => n + r.value.byteLength + (r.key?.byteLength ?? 0) + Object.entries(r.headers).reduce((m, [k, v]) => m + Buffer.byteLength(k) + Buffer.byteLength(v), 0), 0);
    expect(batch.bytes).toBeGreaterThanOrEqual(exact);
  });

  it('cuts chunks in order, each within the byte budget unless a record alone exceeds it', () => {
    const envelopes: Envelope[] = [10, 500, 10, 10, 2_000, 10].map((size, i) => ({ id: `m${i}`, topic: 't', headers: {}, body: new Uint8Array(size), timestamp: 1 }));
    const batch = envelopeBatch(envelopes, 1);
    const ids = (chunks: ReadonlyArray<readonly { headers: Readonly<Record<string, unknown>> }[]>) => chunks.map((c) => c.map((r) => r.headers[ID_HEADER]));
    expect(ids(batch.chunks(batch.bytes))).toEqual([['m0', 'm1', 'm2', 'm3', 'm4', 'm5']]);
    const budget = 1_000;
    const chunks = batch.chunks(budget);
    expect(chunks.flat().map((r) => r.headers[ID_HEADER])).toEqual(envelopes.map((e) => e.id));
    expect(ids(chunks)).toEqual([['m0', 'm1'], ['m2', 'm3'], ['m4'], ['m5']]);
    const byId = new Map(envelopes.map((e) => [e.id, e]));
    for (const chunk of chunks.filter((c) => c.length > 1)) {
      expect(envelopeBatch(chunk.map((r) => byId.get(String(r.headers[ID_HEADER]))!), 1).bytes).toBeLessThanOrEqual(budget);
    }
  });
});
