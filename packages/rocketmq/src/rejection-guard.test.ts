import type { Logger } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { acquireRejectionGuard, isClientError } from './rejection-guard.ts';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

describe('isClientError', () => {
  it('recognises gRPC and client exceptions, not application errors', () => {
    const grpc = Object.assign(new Error('14 UNAVAILABLE: Connection dropped'), { code: 14, details: 'Connection dropped', metadata: {} });
    const client = Object.assign(new Error('[response-code=40402] no route'), { name: 'NotFoundException', code: 40402 });
    expect(isClientError(grpc)).toBe(true);
    expect(isClientError(client)).toBe(true);
    expect(isClientError(new Error('my bug'))).toBe(false);
    expect(isClientError('text')).toBe(false);
  });
});

describe('acquireRejectionGuard', () => {
  it('installs one listener while held and removes it when released', () => {
    const before = process.listenerCount('unhandledRejection');
    const releaseA = acquireRejectionGuard(silent);
    const releaseB = acquireRejectionGuard(silent);
    expect(process.listenerCount('unhandledRejection')).toBe(before + 1);
    releaseA();
    releaseA();
    expect(process.listenerCount('unhandledRejection')).toBe(before + 1);
    releaseB();
    expect(process.listenerCount('unhandledRejection')).toBe(before);
  });
});
