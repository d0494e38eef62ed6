import { LEGACY_WIRE_HEADERS, WIRE_HEADERS } from '@mqkit/core/driver';
import type { MessageProperties } from 'amqplib';
import { describe, expect, it, vi } from 'vitest';
import { RETRY_SEPARATOR } from './names.ts';
import { fromDelivery, toPublishOptions } from './wire.ts';

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
  };
}

describe('wire mapping', () => {
  it('publishes persistent, mandatory, with the id as messageId and seconds as timestamp', () => {
    const o = toPublishOptions(envelope);
    const headers = o.headers as Record<string, unknown>;
    expect(o).toMatchObject({ messageId: 'order-1', persistent: true, mandatory: true, contentType: 'application/json', timestamp: 1_700_000_000 });
    expect(headers[WIRE_HEADERS.key]).toBe('customer-7');
    expect(headers[WIRE_HEADERS.timestamp]).toBe(1_700_000_000_123);
    expect(headers[WIRE_HEADERS.priorAttempts]).toBeUndefined();
    expect(headers['content-type']).toBeUndefined(); // carried once, as contentType
    expect(headers.tenant).toBe('acmé');
    expect((toPublishOptions(envelope, 3).headers as Record<string, unknown>)[WIRE_HEADERS.priorAttempts]).toBe(3);
  });

  it('round-trips id, key, headers, body and the millisecond timestamp, hiding transport headers', () => {
    const o = toPublishOptions(envelope, 2);
    const r = fromDelivery('orders', Buffer.from([1, 2, 3]), asDelivered(o, { 'x-delivery-count': 1, 'x-death': [{ queue: 'orders.billing~retry~1000', reason: 'expired' }], 'x-first-death-reason': 'expired' }), true, 'orders.billing', 'k');
    expect(r.envelope.id).toBe('order-1');
    expect(r.envelope.key).toBe('customer-7');
    expect(r.envelope.headers).toEqual(envelope.headers);
    expect(r.envelope.timestamp).toBe(envelope.timestamp);
    expect([...r.envelope.body]).toEqual([1, 2, 3]);
    expect(r.priorAttempts).toBe(2);
    expect(r.deliveryCount).toBe(1);
  });

  it('writes the shared timestamp name and still decodes (and hides) the legacy x-mqkit-ts of messages already queued', () => {
    const o = toPublishOptions(envelope);
    expect(WIRE_HEADERS.timestamp).toBe('x-mqkit-timestamp');
    expect((o.headers as Record<string, unknown>)[LEGACY_WIRE_HEADERS.timestamp]).toBeUndefined();
    const { [WIRE_HEADERS.timestamp]: ms, ...rest } = o.headers;
    const legacy = fromDelivery('orders', Buffer.from([1, 2, 3]), asDelivered({ ...o, headers: { ...rest, 'x-mqkit-ts': ms! } }), false, 'orders.billing', 'k');
    expect(legacy.envelope.timestamp).toBe(envelope.timestamp);
    expect(legacy.envelope.headers).toEqual(envelope.headers);
  });

  it('falls back to AMQP fields for messages not published by mqkit', () => {
    const props = { headers: {}, messageId: 'raw-1', timestamp: 1_700_000_000, contentType: 'text/plain' } as unknown as MessageProperties;
    const r = fromDelivery('orders', Buffer.from('hi'), props, true, 'orders.billing', 'k');
    expect(r.envelope.timestamp).toBe(1_700_000_000_000);
    expect(r.envelope.headers['content-type']).toBe('text/plain');
    expect(r.envelope.key).toBeUndefined();
    expect(r.deliveryCount).toBe(1);
  });
});

/** What amqplib hands over for a message a foreign (non-mqkit) producer published. */
function foreign(headers: Record<string, unknown>, extra: Partial<MessageProperties> = {}): MessageProperties {
  return { headers, contentType: 'text/plain', ...extra } as unknown as MessageProperties;
}

const GROUP_QUEUE = 'orders.billing';

describe('messages from foreign producers (issue #16)', () => {
  it('fallback id without messageId: stable across redeliveries (delivery count, redelivered flag, x-death)', () => {
    const first = fromDelivery('orders', Buffer.from('hello'), foreign({ tenant: 'a' }), false, GROUP_QUEUE, 'orders.created');
    // the redelivery comes seconds later (the message carries no timestamp property)
    vi.useFakeTimers({ now: Date.now() + 5_000 });
    const again = fromDelivery('orders', Buffer.from('hello'), foreign({ tenant: 'a', 'x-delivery-count': 3 }), true, GROUP_QUEUE, 'orders.created');
    vi.useRealTimers();
    expect(first.envelope.id).toBe(again.envelope.id);
    expect(first.envelope.id).toMatch(/^amqp-/);
  });

  it('fallback id without messageId or timestamp: different content of equal length never collides', () => {
    const a = fromDelivery('orders', Buffer.from('aaaa'), foreign({}), false, GROUP_QUEUE, 'k');
    const b = fromDelivery('orders', Buffer.from('bbbb'), foreign({}), false, GROUP_QUEUE, 'k');
    const c = fromDelivery('orders', Buffer.from('aaaa'), foreign({ h: 'x' }), false, GROUP_QUEUE, 'k');
    const d = fromDelivery('orders', Buffer.from('aaaa'), foreign({}), false, GROUP_QUEUE, 'other');
    const e = fromDelivery('orders', Buffer.from('aaaa'), foreign({}, { correlationId: 'c-1' }), false, GROUP_QUEUE, 'k');
    expect(new Set([a, b, c, d, e].map((r) => r.envelope.id)).size).toBe(5);
  });

  it('a forged x-delivery-count on a first delivery (redelivered=false) counts as 0', () => {
    const r = fromDelivery('orders', Buffer.from('x'), foreign({ 'x-delivery-count': 100 }), false, GROUP_QUEUE, 'k');
    expect(r.deliveryCount).toBe(0);
  });

  it('RabbitMQ 4.x: x-acquired-count (every delivery, also those returned by a closed channel) counts when above x-delivery-count; neither is shown', () => {
    const r = fromDelivery('orders', Buffer.from('x'), foreign({ 'x-delivery-count': 1, 'x-acquired-count': 3 }), true, GROUP_QUEUE, 'k');
    expect(r.deliveryCount).toBe(3);
    expect(r.envelope.headers['x-acquired-count']).toBeUndefined();
    const first = fromDelivery('orders', Buffer.from('x'), foreign({ 'x-acquired-count': 50 }), false, GROUP_QUEUE, 'k');
    expect(first.deliveryCount).toBe(0);
  });

  it('a forged x-mqkit-prior-attempts is ignored unless the message came back from this group\'s delay queue', () => {
    const forged = fromDelivery('orders', Buffer.from('x'), foreign({ [WIRE_HEADERS.priorAttempts]: 100 }), false, GROUP_QUEUE, 'k');
    expect(forged.priorAttempts).toBe(0);
    const otherGroup = fromDelivery(
      'orders',
      Buffer.from('x'),
      foreign({ [WIRE_HEADERS.priorAttempts]: 100, 'x-death': [{ queue: `orders.other${RETRY_SEPARATOR}1000`, reason: 'expired', count: 1 }] }),
      false,
      GROUP_QUEUE,
      'k',
    );
    expect(otherGroup.priorAttempts).toBe(0);
    const real = fromDelivery(
      'orders',
      Buffer.from('x'),
      foreign({ [WIRE_HEADERS.priorAttempts]: 3, 'x-death': [{ queue: `${GROUP_QUEUE}${RETRY_SEPARATOR}1000`, reason: 'expired', count: 1 }] }),
      false,
      GROUP_QUEUE,
      'k',
    );
    expect(real.priorAttempts).toBe(3);
    expect(real.envelope.headers['x-death']).toBeUndefined();
  });

  it('x-mqkit-deliver-at is honoured only within the adapter\'s longest delay, and hidden from handlers', () => {
    const now = Date.now();
    const soon = fromDelivery('orders', Buffer.from('x'), foreign({ [WIRE_HEADERS.deliverAt]: now + 60_000 }), false, GROUP_QUEUE, 'k', now);
    expect(soon.deliverAt).toBe(now + 60_000);
    expect(soon.envelope.headers[WIRE_HEADERS.deliverAt]).toBeUndefined();
    const parked = fromDelivery('orders', Buffer.from('x'), foreign({ [WIRE_HEADERS.deliverAt]: now + 10 * 24 * 3600_000 }), false, GROUP_QUEUE, 'k', now);
    expect(parked.deliverAt).toBeUndefined();
    const past = fromDelivery('orders', Buffer.from('x'), foreign({ [WIRE_HEADERS.deliverAt]: now - 1 }), false, GROUP_QUEUE, 'k', now);
    expect(past.deliverAt).toBeUndefined();
    const junk = fromDelivery('orders', Buffer.from('x'), foreign({ [WIRE_HEADERS.deliverAt]: 'soon' }), false, GROUP_QUEUE, 'k', now);
    expect(junk.deliverAt).toBeUndefined();
  });

  it('a 0-byte body round-trips as 0 bytes', () => {
    const r = fromDelivery('orders', Buffer.alloc(0), asDelivered(toPublishOptions({ ...envelope, body: new Uint8Array(0) })), false, GROUP_QUEUE, 'k');
    expect(r.envelope.body.byteLength).toBe(0);
  });
});
