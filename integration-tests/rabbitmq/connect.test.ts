/**
 * Connecting through connect(): the scheme loads this adapter, failures are typed, and secrets
 * never appear in errors.
 */
import { connect, MqError } from '@mqkit/core';
import { rabbitmq } from '@mqkit/rabbitmq';
import { describe, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';

const { url } = requireBroker('rabbitmq');

async function failure(target: string, options: Record<string, unknown> = {}): Promise<MqError> {
  try {
    const c = await connect(target, { adapters: [rabbitmq()], options });
    await c.close();
  } catch (err) {
    expect(err).toBeInstanceOf(MqError);
    return err as MqError;
  }
  throw new Error('expected connect to fail');
}

describe('rabbitmq adapter: connect', () => {
  it('connect(amqp://…) without adapters loads @mqkit/rabbitmq by scheme', async () => {
    const client = await connect(url);
    expect(client.capabilities.ordering).toBe('key');
    await client.close();
  });

  it('a wrong password is AUTH, and the password is not in the error', async () => {
    const secret = 'not-the-Password-42';
    const bad = new URL(url);
    bad.password = secret;
    const err = await failure(bad.href);
    expect(err.code).toBe('AUTH');
    expect(err.retryable).toBe(false);
    expect(err.message).not.toContain(secret);
    expect(JSON.stringify(err.details)).not.toContain(secret);
  });

  it('an unknown vhost is NOT_FOUND', async () => {
    const bad = new URL(url);
    bad.pathname = '/no-such-vhost-mqkit';
    const err = await failure(bad.href);
    expect(err.code).toBe('NOT_FOUND');
  });

  it('a closed port is CONNECTION (retryable); a bad option is CONFIG', async () => {
    const down = new URL(url);
    down.port = '1';
    const err = await failure(down.href, { connectTimeoutMs: 2_000 });
    expect(err.code).toBe('CONNECTION');
    expect(err.retryable).toBe(true);
    expect((await failure(url, { deliveryLimit: 0 })).code).toBe('CONFIG');
  });
});
