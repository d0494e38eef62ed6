import type { Envelope } from '@mqkit/core/driver';
import type { MessageView } from 'rocketmq-client-nodejs';
import { describe, expect, it } from 'vitest';
import { fromMessageView, PROPERTY, toMessageOptions } from './message-codec.ts';
import { ackHandle } from './receipt-handle.ts';
import { topicTypeOf } from './topic-types.ts';

const envelope: Envelope = {
  id: 'order-1',
  topic: 'orders',
  key: 'customer-7',
  headers: { 'content-type': 'application/json', traceparent: '00-abc-def-01', tenant: 'acme', empty: '' },
  body: new Uint8Array([0, 1, 2, 255]),
  timestamp: 1_700_000_000_000,
};

function view(message: ReturnType<typeof toMessageOptions>, extra: Partial<MessageView> = {}): MessageView {
  return {
    messageId: 'NATIVE-ID',
    topic: message.topic,
    body: message.body,
    properties: new Map(message.properties),
    keys: message.keys ?? [],
    messageGroup: message.messageGroup,
    bornTimestamp: new Date(1),
    ...extra,
  } as unknown as MessageView;
}

describe('message codec', () => {
  it('carries id, key, headers, body and timestamp through a NORMAL topic', () => {
    const native = toMessageOptions(envelope, 'NORMAL');
    expect(native.messageGroup).toBeUndefined();
    expect(native.deliveryTimestamp).toBeUndefined();
    expect(native.keys).toEqual(['order-1', 'customer-7']);
    const back = fromMessageView(view(native));
    expect(back).toEqual({ ...envelope, body: envelope.body });
    expect(Buffer.from(back.body).equals(Buffer.from(envelope.body))).toBe(true);
  });

  it('uses the key as FIFO message group, the id when there is no key', () => {
    expect(toMessageOptions(envelope, 'FIFO').messageGroup).toBe('customer-7');
    expect(toMessageOptions({ ...envelope, key: undefined }, 'FIFO').messageGroup).toBe('order-1');
  });

  it('an unkeyed mqkit message stays unkeyed on a FIFO topic', () => {
    const native = toMessageOptions({ ...envelope, key: undefined }, 'FIFO');
    expect(fromMessageView(view(native)).key).toBeUndefined();
  });

  it('always gives DELAY topics a delivery timestamp', () => {
    expect(toMessageOptions({ ...envelope, delayMs: 5000 }, 'DELAY', 1000).deliveryTimestamp).toEqual(new Date(6000));
    expect(toMessageOptions(envelope, 'DELAY', 1000).deliveryTimestamp).toEqual(new Date(1000));
  });

  it('falls back to native fields for messages from non-mqkit producers', () => {
    const back = fromMessageView(view({ topic: 't', body: Buffer.from('x'), properties: new Map([['a', 'b']]) }, { messageGroup: 'g' }));
    expect(back.id).toBe('NATIVE-ID');
    expect(back.key).toBe('g');
    expect(back.timestamp).toBe(1);
    expect(back.headers).toEqual({ a: 'b' });
  });

  it('does not leak its own properties into headers', () => {
    const back = fromMessageView(view(toMessageOptions(envelope, 'NORMAL')));
    for (const name of Object.values(PROPERTY)) expect(back.headers[name]).toBeUndefined();
  });
});

describe('topicTypeOf', () => {
  it('reads the type from the accepted wire types', () => {
    expect(topicTypeOf([1])).toBe('NORMAL');
    expect(topicTypeOf([2])).toBe('FIFO');
    expect(topicTypeOf([3])).toBe('DELAY');
    expect(topicTypeOf([4])).toBe('TRANSACTION');
    expect(topicTypeOf([])).toBe('NORMAL');
  });
});

describe('ackHandle', () => {
  it('puts the original start offset back (server bug apache/rocketmq#9583)', () => {
    expect(ackHandle('9 a b c d e f 3 x')).toBe('3 a b c d e f 3 x');
    expect(ackHandle('too short')).toBe('too short');
  });

});

describe('empty bodies and forged properties', () => {
  // Defect 5 (issue #16): the proxy refuses a 0-byte body (41302), so it travels as a one-byte
  // placeholder plus a marker property, removed on receive.
  it('carries an empty body as a placeholder the consumer turns back into 0 bytes', () => {
    const empty = { ...envelope, body: new Uint8Array(0) };
    for (const type of ['NORMAL', 'FIFO', 'DELAY', 'TRANSACTION'] as const) {
      const native = toMessageOptions(empty, type);
      expect(native.body.byteLength).toBe(1);
      const back = fromMessageView(view(native));
      expect(back.body.byteLength).toBe(0);
      expect(back.headers).toEqual(envelope.headers);
    }
    // A non-empty body carries no marker.
    expect(toMessageOptions(envelope, 'NORMAL').properties?.has(PROPERTY.emptyBody)).toBe(false);
  });

  it('keeps a body that is not the placeholder even when the empty marker says otherwise (forged)', () => {
    const forged = toMessageOptions({ ...envelope, body: new TextEncoder().encode('real data') }, 'NORMAL');
    forged.properties!.set(PROPERTY.emptyBody, '1');
    expect(new TextDecoder().decode(fromMessageView(view(forged)).body)).toBe('real data');
    // A one-byte body equal to the placeholder but without the marker is a real one-byte body.
    const oneByte = toMessageOptions({ ...envelope, body: toMessageOptions({ ...envelope, body: new Uint8Array(0) }, 'NORMAL').body }, 'NORMAL');
    expect(fromMessageView(view(oneByte)).body.byteLength).toBe(1);
  });

  // Defect 12 (issue #16): x-mqkit-* properties a raw producer sets carry no control here.
  it('gives foreign x-mqkit-* properties no say over attempts or delays (they stay plain headers)', () => {
    const raw = {
      topic: 'orders',
      body: Buffer.from('x'),
      properties: new Map([
        ['x-mqkit-prior-attempts', '1000'],
        ['x-mqkit-deliver-at', String(Date.now() + 365 * 86_400_000)],
      ]),
    } as unknown as ReturnType<typeof toMessageOptions>;
    const back = fromMessageView(view(raw));
    expect(back.id).toBe('NATIVE-ID');
    expect(back.headers['x-mqkit-prior-attempts']).toBe('1000');
  });

  // Found by the model sweep: the proxy hands FIFO messages over with the system property
  // __SHARDINGKEY among the user properties; kept as a header, it made the dead-letter copy a
  // FIFO message the NORMAL -dlq topic refused (40014), so nothing from a FIFO topic was ever
  // dead-lettered.
  it('does not turn broker system properties into headers', () => {
    const received = toMessageOptions({ ...envelope, headers: { app: 'x' } }, 'FIFO');
    received.properties!.set('__SHARDINGKEY', 'customer-7');
    received.properties!.set('TRAN_MSG', 'true');
    received.properties!.set('PGROUP', 'producers');
    expect(fromMessageView(view(received)).headers).toEqual({ app: 'x' });
  });
});
