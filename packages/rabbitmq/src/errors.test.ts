import { MqError } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { classifyError, replyCode } from './errors.ts';

function amqpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { code, classId: 60, methodId: 40 });
}

describe('classifyError', () => {
  it.each([
    [amqpError(404, "Channel closed by server: 404 (NOT-FOUND) with message \"NOT_FOUND - no exchange 'x' in vhost '/'\""), 'NOT_FOUND', false],
    [amqpError(406, 'Channel closed by server: 406 (PRECONDITION-FAILED) inequivalent arg'), 'CONFIG', false],
    [amqpError(403, 'ACCESS_REFUSED'), 'AUTH', false],
    [amqpError(320, 'Connection closed: 320 (CONNECTION-FORCED)'), 'CONNECTION', true],
    [amqpError(312, 'NO_ROUTE'), 'UNROUTABLE', false],
    [amqpError(311, 'CONTENT_TOO_LARGE'), 'TOO_LARGE', false],
    [amqpError(541, 'INTERNAL_ERROR'), 'CONNECTION', true],
    [amqpError(530, "NOT_ALLOWED - vhost nope not found"), 'NOT_FOUND', false],
  ])('maps AMQP reply %#', (err, code, retryable) => {
    const e = classifyError(err, 'ctx');
    expect(e).toBeInstanceOf(MqError);
    expect(e.code).toBe(code);
    expect(e.retryable).toBe(retryable);
    expect(e.cause).toBe(err);
  });

  it('maps socket and client errors', () => {
    expect(classifyError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5672'), { code: 'ECONNREFUSED' }), 'c').code).toBe('CONNECTION');
    expect(classifyError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), 'c').retryable).toBe(true);
    expect(classifyError(new Error('Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused"'), 'c').code).toBe('AUTH');
    expect(classifyError(Object.assign(new Error('Channel closed'), { name: 'IllegalOperationError' }), 'c').code).toBe('CONNECTION');
    expect(classifyError(new Error('channel closed'), 'c').retryable).toBe(true);
    // amqplib, for a channel RPC pending when the socket died (e.g. opening the confirm channel)
    const ended = classifyError(new Error('Channel ended, no reply will be forthcoming'), 'c');
    expect([ended.code, ended.retryable]).toEqual(['CONNECTION', true]);
    expect(classifyError(new Error('message nacked'), 'c').code).toBe('NOT_CONFIRMED');
    expect(classifyError(new RangeError('headers table exceeds 64 KiB'), 'c').code).toBe('TOO_LARGE');
    expect(classifyError(Object.assign(new Error('self signed'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }), 'c').code).toBe('CONFIG');
    expect(classifyError(new Error('Expected ConnectionOpenOk; got <ConnectionClose channel:0>'), 'c').code).toBe('NOT_FOUND');
    expect(classifyError(new Error('something odd'), 'c').code).toBe('INTERNAL');
  });

  it('passes MqErrors through and reads reply codes from handshake text', () => {
    const e = new MqError('TIMEOUT', 'slow');
    expect(classifyError(e, 'c')).toBe(e);
    expect(replyCode(new Error('Connection closed: 320 (CONNECTION-FORCED) with message "shutdown"'))).toBe(320);
  });
});
