import type { Envelope } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { BODY_ATTRIBUTE, dedupId, fromWire, MAX_DUE_AHEAD_MS, messageGroupId, META_ATTRIBUTE, toWire, type ReceivedMessage } from './wire.ts';

function envelope(overrides: Partial<Envelope> = {}): Envelope {
  return {
    id: 'id-1',
    topic: 't',
    key: 'k',
    headers: { 'content-type': 'application/json', traceparent: '00-abc-def-01', tenant: 'acme', 'x-mqkit-attempts': '3' },
    body: new TextEncoder().encode('{"a":1}'),
    timestamp: 1_700_000_000_000,
    ...overrides,
  };
}

function receive(wire: ReturnType<typeof toWire>, extra: Partial<ReceivedMessage> = {}): ReceivedMessage {
  return { MessageId: 'm-1', Body: wire.body, MessageAttributes: wire.attributes, ...extra };
}

describe('wire format', () => {
  it('round-trips id, key, headers, body and timestamp in one attribute', () => {
    const e = envelope();
    const wire = toWire(e);
    expect(wire.body).toBe('{"a":1}');
    expect(Object.keys(wire.attributes)).toEqual([META_ATTRIBUTE, 'tenant']);
    const back = fromWire(receive(wire), 't');
    expect(back.envelope).toEqual({ ...e, headers: { ...e.headers } });
    expect(back.native).toBe(true);
    expect(back.priorAttempts).toBe(0);
  });

  it('base64-encodes binary bodies and keeps empty ones', () => {
    const binary = new Uint8Array([0, 1, 2, 255, 254, 0x1f]);
    const wire = toWire(envelope({ body: binary }));
    expect(wire.body).toBe(Buffer.from(binary).toString('base64'));
    expect(fromWire(receive(wire), 't').envelope.body).toEqual(binary);
    const empty = toWire(envelope({ body: new Uint8Array(0) }));
    expect(empty.body).toBe('-');
    expect(fromWire(receive(empty), 't').envelope.body).toEqual(new Uint8Array(0));
    const controlChar = toWire(envelope({ body: new TextEncoder().encode('a\u0001b') }));
    expect(fromWire(receive(controlChar), 't').envelope.body).toEqual(new TextEncoder().encode('a\u0001b'));
    const unicode = new TextEncoder().encode('héllo 🌍');
    expect(toWire(envelope({ body: unicode })).body).toBe('héllo 🌍');
  });

  // A binary payload near the size limit must fit (conformance payload-near-size-limit): base64
  // in the body would inflate it by a third, so to SQS it goes raw in a Binary attribute.
  it('sends binary bodies to SQS raw in a Binary attribute, counted at their own size', () => {
    const binary = new Uint8Array(4096).map((_, i) => (i * 7919) % 256);
    const wire = toWire(envelope({ body: binary }), {}, undefined, { binaryAttribute: true });
    expect(wire.body).toBe('-');
    expect(wire.attributes[BODY_ATTRIBUTE]?.DataType).toBe('Binary');
    expect(wire.size).toBeLessThan(binary.byteLength + 400);
    const received = receive(wire);
    expect(fromWire(received, 't').envelope.body).toEqual(binary);
    // Text stays in the body; the attribute budget still holds.
    expect(toWire(envelope(), {}, undefined, { binaryAttribute: true }).attributes[BODY_ATTRIBUTE]).toBeUndefined();
    const headers: Record<string, string> = {};
    for (let i = 0; i < 30; i++) headers[`h${i}`] = `v${i}`;
    expect(Object.keys(toWire(envelope({ body: binary, headers }), {}, undefined, { binaryAttribute: true }).attributes)).toHaveLength(10);
  });

  it('keeps the body when a forged binary marker has no attribute or a real body', () => {
    const meta = { [META_ATTRIBUTE]: { DataType: 'String', StringValue: JSON.stringify({ v: 1, id: 'x', ts: 1, h: {}, e: 'bin' }) } };
    expect(new TextDecoder().decode(fromWire({ MessageId: 'm', Body: 'text', MessageAttributes: meta }, 't').envelope.body)).toBe('text');
    expect(new TextDecoder().decode(fromWire({ MessageId: 'm', Body: '-', MessageAttributes: meta }, 't').envelope.body)).toBe('-');
  });

  it('stays within the 10-attribute budget', () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < 30; i++) headers[`h${i}`] = `v${i}`;
    const wire = toWire(envelope({ headers }));
    expect(Object.keys(wire.attributes)).toHaveLength(10);
    expect(fromWire(receive(wire), 't').envelope.headers).toEqual(headers);
  });

  it('counts body and attributes in the size', () => {
    const wire = toWire(envelope());
    const meta = wire.attributes[META_ATTRIBUTE]!.StringValue!;
    expect(wire.size).toBe(7 + 'mqkit'.length + 'String'.length + Buffer.byteLength(meta) + 'tenant'.length + 'String'.length + 'acme'.length);
  });

  it('carries due time and prior attempts, the attempts sealed with the consumer key', () => {
    const key = new Uint8Array(32).fill(7);
    const back = fromWire(receive(toWire(envelope(), { due: 123, attempts: 2 }, key)), 't', { key });
    expect(back.due).toBe(123);
    expect(back.priorAttempts).toBe(2);
  });

  // Defect 12 (issue #16): the `mqkit` attribute can be written by any producer on the queue.
  describe('a forged mqkit attribute', () => {
    const key = new Uint8Array(32).fill(7);
    const forged = (meta: Record<string, unknown>, body = 'payload'): ReceivedMessage => ({
      MessageId: 'm-1',
      Body: body,
      MessageAttributes: { [META_ATTRIBUTE]: { DataType: 'String', StringValue: JSON.stringify({ v: 1, id: 'x', ts: 1, h: {}, ...meta }) } },
    });

    it('cannot make a first delivery skip retries: unsealed or wrongly sealed prior attempts are ignored', () => {
      expect(fromWire(forged({ a: 1000 }), 't', { key }).priorAttempts).toBe(0);
      expect(fromWire(forged({ a: 1000, s: 'AAAAAAAAAAAAAAAAAAAAAA' }), 't', { key }).priorAttempts).toBe(0);
      // A seal made with another key (another connection, or a guess) is not trusted either.
      const other = toWire(envelope(), { attempts: 9 }, new Uint8Array(32).fill(8));
      expect(fromWire(receive(other), 't', { key }).priorAttempts).toBe(0);
      // A seal copied onto another message id or another count does not fit.
      const sealed = JSON.parse(toWire(envelope(), { attempts: 2 }, key).attributes[META_ATTRIBUTE]!.StringValue!) as Record<string, unknown>;
      expect(fromWire(forged({ ...sealed, a: 50 }), 't', { key }).priorAttempts).toBe(0);
      expect(fromWire(forged({ ...sealed, id: 'other' }), 't', { key }).priorAttempts).toBe(0);
      expect(fromWire(forged({ ...sealed }), 't', { key }).priorAttempts).toBe(2);
    });

    it('cannot park a message: a due time beyond now + the longest delay is ignored', () => {
      const now = 1_800_000_000_000;
      expect(fromWire(forged({ due: now + MAX_DUE_AHEAD_MS + 1 }), 't', { now }).due).toBeUndefined();
      expect(fromWire(forged({ due: Number.MAX_SAFE_INTEGER }), 't', { now }).due).toBeUndefined();
      expect(fromWire(forged({ due: 'soon' }), 't', { now }).due).toBeUndefined();
      expect(fromWire(forged({ due: now + 60_000 }), 't', { now }).due).toBe(now + 60_000);
    });

    it('cannot drop a body: the empty marker holds only over the placeholder body', () => {
      expect(fromWire(forged({ e: 'empty' }, 'real data'), 't').envelope.body).toEqual(new TextEncoder().encode('real data'));
      expect(fromWire(forged({ e: 'empty' }, '-'), 't').envelope.body).toEqual(new Uint8Array(0));
    });
  });

  it('decodes foreign messages from attributes', () => {
    const back = fromWire(
      { MessageId: 'native-1', Body: 'hi', Attributes: { SentTimestamp: '42', MessageGroupId: 'g' }, MessageAttributes: { a: { DataType: 'String', StringValue: 'b' } } },
      't',
    );
    expect(back.native).toBe(false);
    expect(back.envelope).toMatchObject({ id: 'native-1', key: 'g', headers: { a: 'b' }, timestamp: 42 });
    expect(fromWire({ MessageId: 'x', Body: 'y', MessageAttributes: { mqkit: { DataType: 'String', StringValue: '{bad' } } }, 't').native).toBe(false);
  });

  it('makes FIFO ids SQS accepts', () => {
    expect(dedupId('abc')).toBe('abc');
    expect(dedupId('abc', 2)).toBe('abc#2');
    expect(dedupId('x'.repeat(200))).toMatch(/^h:[0-9a-f]{64}$/);
    expect(dedupId('with space')).toMatch(/^h:/);
    expect(messageGroupId(envelope({ key: undefined }))).toBe('id-1');
    expect(messageGroupId(envelope({ key: 'ü' }))).toMatch(/^h:/);
  });
});
