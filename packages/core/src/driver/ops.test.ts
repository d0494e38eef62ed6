import { describe, expect, it } from 'vitest';
import { HEADERS, type Envelope } from '../message.ts';
import { applicationHeaders, deadLetterInfo, opsUnsupported } from './ops.ts';

const envelope = (headers: Record<string, string>): Envelope => ({ id: 'm1', topic: 'orders-dlq', headers, body: new Uint8Array(), timestamp: 1_000 });

describe('deadLetterInfo', () => {
  it('reads the headers core writes when it dead-letters', () => {
    const info = deadLetterInfo(
      envelope({
        [HEADERS.deadLetterReason]: 'handler-failed',
        [HEADERS.deadLetterError]: 'Error: boom',
        [HEADERS.deadLetterAttempts]: '3',
        [HEADERS.originalTopic]: 'orders',
        [HEADERS.originalGroup]: 'billing',
        [HEADERS.deadLetteredAt]: '2026-01-02T03:04:05.000Z',
      }),
    );
    expect(info).toEqual({
      reason: 'handler-failed',
      error: 'Error: boom',
      attempts: 3,
      originalTopic: 'orders',
      originalGroup: 'billing',
      deadLetteredAt: Date.parse('2026-01-02T03:04:05.000Z'),
    });
  });

  it('falls back on a message without them (published to the topic by hand)', () => {
    expect(deadLetterInfo(envelope({ [HEADERS.deadLetterAttempts]: 'x', [HEADERS.deadLetteredAt]: 'yesterday' }))).toEqual({
      reason: 'unknown',
      error: undefined,
      attempts: undefined,
      originalTopic: undefined,
      originalGroup: undefined,
      deadLetteredAt: 1_000,
    });
  });
});

describe('applicationHeaders', () => {
  it('keeps what the application set and drops mqkit, content-type and trace headers', () => {
    expect(
      applicationHeaders(
        envelope({
          'x-app': '1',
          'X-Tenant': 'acme',
          'content-type': 'application/json',
          traceparent: '00-abc-def-01',
          tracestate: 'a=b',
          [HEADERS.deadLetterReason]: 'handler-failed',
          'x-mqkit-original-partition': '2',
          'X-MQKIT-ERROR': 'e',
        }),
      ),
    ).toEqual({ 'x-app': '1', 'X-Tenant': 'acme' });
  });
});

describe('opsUnsupported', () => {
  it('is UNSUPPORTED naming adapter, operation and why', () => {
    const err = opsUnsupported('kafka', 'remove one message', 'a log is truncated from the start only');
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.message).toBe('kafka: cannot remove one message: a log is truncated from the start only');
  });
});
