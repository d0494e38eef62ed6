import type { MessageProperties } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { fromDelivery, toPublishOptions, WIRE_HEADERS } from './wire.ts';

const envelope = {
  id: 'order-1',
  topic: 'orders',
  key: 'customer-7',
  headers: { 'content-type': 'application/json', traceparent: '00-abc-def-01', tenant: 'acmé' },
  body: new Uint8Array([1, 2, 3]),
  timestamp: 1_700_000_000_123,
};

function asDelivered(options: ReturnType<typeof toPublishOptions>, extra: Record<string, unknown> = {}): MessageProperties {
  return {
    contentType: options.contentType,
    contentEncoding: undefined,
    headers: { ...options.headers, ...extra },
    deliveryMode: 2,
    priority: undefined,
    correlationId: undefined,
    replyTo: undefined,
    expiration: undefined,
    messageId: options.messageId,
    timestamp: options.timestamp,
    type: undefined,
    userId: undefined,
    appId: undefined,
    clusterId: undefined,
  } as MessageProperties;
}

describe('wire mapping', () => {
  it('publishes persistent, mandatory, with the id as messageId and seconds as timestamp', () => {
    const o = toPublishOptions(envelope);
    expect(o).toMatchObject({ messageId: 'order-1', persistent: true, mandatory: true, contentType: 'application/json', timestamp: 1_700_000_000 });
    expect(o.headers[WIRE_HEADERS.key]).toBe('customer-7');
    expect(o.headers[WIRE_HEADERS.timestamp]).toBe(1_700_000_000_123);
    expect(o.headers[WIRE_HEADERS.priorAttempts]).toBeUndefined();
    expect(o.headers['content-type']).toBeUndefined(); // carried once, as contentType
    expect(o.headers.tenant).toBe('acmé');
    expect(toPublishOptions(envelope, 3).headers[WIRE_HEADERS.priorAttempts]).toBe(3);
  });

  it('round-trips id, key, headers, body and the millisecond timestamp, hiding transport headers', () => {
    const o = toPublishOptions(envelope, 2);
    const r = fromDelivery('orders', Buffer.from([1, 2, 3]), asDelivered(o, { 'x-delivery-count': 1, 'x-death': [{}], 'x-first-death-reason': 'expired' }), true);
    expect(r.envelope.id).toBe('order-1');
    expect(r.envelope.key).toBe('customer-7');
    expect(r.envelope.headers).toEqual(envelope.headers);
    expect(r.envelope.timestamp).toBe(envelope.timestamp);
    expect([...r.envelope.body]).toEqual([1, 2, 3]);
    expect(r.priorAttempts).toBe(2);
    expect(r.deliveryCount).toBe(1);
  });

  it('falls back to AMQP fields for messages not published by mqkit', () => {
    const props = { headers: {}, messageId: 'raw-1', timestamp: 1_700_000_000, contentType: 'text/plain' } as unknown as MessageProperties;
    const r = fromDelivery('orders', Buffer.from('hi'), props, true);
    expect(r.envelope.timestamp).toBe(1_700_000_000_000);
    expect(r.envelope.headers['content-type']).toBe('text/plain');
    expect(r.envelope.key).toBeUndefined();
    expect(r.deliveryCount).toBe(1);
  });
});
