import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeMessages } from './ops.ts';

/** One stored message in the broker's layout (MessageDecoder), IPv4 hosts. */
function stored(o: { queueOffset: bigint; body: Buffer; topic: string; properties: Record<string, string>; v2?: boolean; compressed?: boolean; born: number }): Buffer {
  const body = o.compressed ? deflateSync(o.body) : o.body;
  const props = Buffer.from(Object.entries(o.properties).map(([k, v]) => `${k}\u0001${v}`).join('\u0002'));
  const topic = Buffer.from(o.topic);
  const parts: Buffer[] = [];
  const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); parts.push(b); };
  const i64 = (n: bigint) => { const b = Buffer.alloc(8); b.writeBigInt64BE(n); parts.push(b); };
  i32(0); // size, patched below
  i32(o.v2 ? -626843477 : -626843481);
  i32(0); // body CRC
  i32(3); // queue id
  i32(0); // flag
  i64(o.queueOffset);
  i64(1234n); // physical offset
  i32(o.compressed ? 1 : 0); // sysFlag
  i64(BigInt(o.born));
  parts.push(Buffer.alloc(8)); // born host
  i64(0n); // store timestamp
  parts.push(Buffer.alloc(8)); // store host
  i32(0); // reconsume times
  i64(0n); // prepared transaction offset
  i32(body.length);
  parts.push(body);
  if (o.v2) { const b = Buffer.alloc(2); b.writeInt16BE(topic.length); parts.push(b); } else parts.push(Buffer.from([topic.length]));
  parts.push(topic);
  const pl = Buffer.alloc(2); pl.writeInt16BE(props.length); parts.push(pl, props);
  const all = Buffer.concat(parts);
  all.writeInt32BE(all.length, 0);
  return all;
}

describe('rocketmq ops: decodeMessages (PULL_MESSAGE body)', () => {
  it('reads offsets, bodies (inflated when compressed), v1 and v2 topic lengths, and drops broker properties', () => {
    const body = Buffer.concat([
      stored({ queueOffset: 7n, body: Buffer.from('{"a":1}'), topic: 'orders-dlq', born: 1000, properties: { 'x-mqkit-id': 'm1', 'x-mqkit-dead-letter-reason': 'handler-failed', 'x-tenant': 'acme', UNIQ_KEY: 'U1', BORN_TIMESTAMP: '1', __SYS: 'x' } }),
      stored({ queueOffset: 8n, body: Buffer.from('z'.repeat(5000)), topic: 'orders-dlq', born: 2000, v2: true, compressed: true, properties: { UNIQ_KEY: 'U2' } }),
    ]);
    const [a, b, ...rest] = decodeMessages(body);
    expect(rest).toEqual([]);
    expect(a!.queueOffset).toBe(7n);
    expect(a!.view.body.toString()).toBe('{"a":1}');
    expect(a!.view.topic).toBe('orders-dlq');
    expect(Object.fromEntries(a!.view.properties)).toEqual({ 'x-mqkit-id': 'm1', 'x-mqkit-dead-letter-reason': 'handler-failed', 'x-tenant': 'acme' });
    expect(a!.view.messageId).toBe('U1');
    expect(b!.queueOffset).toBe(8n);
    expect(b!.view.body.toString()).toBe('z'.repeat(5000));
    expect(b!.view.messageId).toBe('U2');
    expect(b!.view.bornTimestamp?.getTime()).toBe(2000);
  });

  it('stops at a truncated message instead of reading past the buffer', () => {
    const one = stored({ queueOffset: 1n, body: Buffer.from('x'), topic: 't', born: 1, properties: {} });
    expect(decodeMessages(one.subarray(0, one.length - 3))).toEqual([]);
  });
});
