import { thrownMqError } from '@mqkit/testing/conformance';
import { describe, expect, it } from 'vitest';
import { parseConnection, parseSubscribeOptions, prefetchCount } from './options.ts';

const configErrorOf = (fn: () => unknown) => thrownMqError(fn, 'CONFIG');

describe('parseConnection', () => {
  it('applies the documented defaults', () => {
    const s = parseConnection('amqp://guest:guest@127.0.0.1:5672', {});
    expect(s.tls).toBe(false);
    expect(s.options).toMatchObject({
      declare: true,
      deliveryLimit: Number.POSITIVE_INFINITY,
      deadLetterQueue: true,
      maxMessageBytes: 16 * 1024 * 1024,
      maxBatchSize: 1000,
      heartbeat: 10,
      confirmTimeoutMs: 30_000,
      connectTimeoutMs: 10_000,
      reconnectInitialDelayMs: 100,
      reconnectMaxDelayMs: 5_000,
    });
    expect(s.socketOptions).toMatchObject({ timeout: 10_000, clientProperties: { connection_name: 'mqkit' } });
  });

  it('takes mqkit options from the query, strips them from the amqplib URL, keeps amqplib ones', () => {
    const s = parseConnection('amqp://u:p@h:5672/orders?deliveryLimit=7&declare=false&frameMax=131072', {});
    expect(s.options.deliveryLimit).toBe(7);
    expect(s.options.declare).toBe(false);
    const amqp = new URL(s.amqpUrl);
    expect(amqp.pathname).toBe('/orders');
    expect(amqp.searchParams.get('frameMax')).toBe('131072');
    expect(amqp.searchParams.get('heartbeat')).toBe('10');
    expect(amqp.searchParams.has('deliveryLimit')).toBe(false);
  });

  it('refuses a frameMax below 8192, which RabbitMQ 4.1+ refuses at connection tuning', () => {
    // amqplib negotiates the lower of both sides; 4.1 closes a connection whose frame_max < 8192.
    const err = configErrorOf(() => parseConnection('amqp://u:p@h:5672/?frameMax=4096', {}));
    expect(err.message).toMatch(/frameMax 4096.*8192/);
    expect(err.message).not.toContain(':p@');
    expect(new URL(parseConnection('amqp://h/?frameMax=8192', {}).amqpUrl).searchParams.get('frameMax')).toBe('8192');
    expect(new URL(parseConnection('amqp://h/?frameMax=0', {}).amqpUrl).searchParams.get('frameMax')).toBe('0');
    configErrorOf(() => parseConnection('amqp://h/?frameMax=lots', {}));
  });

  it('lets explicit options win over the query', () => {
    const s = parseConnection('amqp://h?deliveryLimit=7', { deliveryLimit: 9 });
    expect(s.options.deliveryLimit).toBe(9);
  });

  it('passes TLS options to the socket for amqps://', () => {
    const s = parseConnection('amqps://u:p@h:5671/', { ca: 'PEM', rejectUnauthorized: false, servername: 'mq.example' });
    expect(s.tls).toBe(true);
    expect(s.socketOptions).toMatchObject({ ca: 'PEM', rejectUnauthorized: false, servername: 'mq.example' });
  });

  it('refuses TLS material on a plain amqp:// URL', () => {
    configErrorOf(() => parseConnection('amqp://h', { cert: 'PEM', key: 'PEM' }));
  });

  it('refuses unknown options, bad values and other schemes with CONFIG', () => {
    expect(configErrorOf(() => parseConnection('amqp://h', { nope: 1 })).message).toMatch(/nope|unrecognized/i);
    configErrorOf(() => parseConnection('amqp://h?deliveryLimit=zero', {}));
    configErrorOf(() => parseConnection('kafka://h:9092', {}));
    configErrorOf(() => parseConnection('not a url', {}));
  });

  it('never echoes the password or secret-looking parameters', () => {
    const secret = 's3cr3t-PASSWORD';
    const s = parseConnection(`amqps://app:${secret}@h:5671/v`, { passphrase: secret });
    expect(s.safeUrl).not.toContain(secret);
    expect(s.safeUrl).toContain('app:***@');
    const err = configErrorOf(() => parseConnection(`amqp://app:${secret}@h/v?deliveryLimit=-1`, {}));
    expect(err.message).not.toContain(secret);
    expect(JSON.stringify(err.details)).not.toContain(secret);
    const err2 = configErrorOf(() => parseConnection(`amqp://app:${secret}@h/v`, { key: 'PEM' }));
    expect(err2.message).not.toContain(secret);
    expect(err2.message).toContain('***');
  });
});

describe('issue #16: delivery limit, delay queues, subscription options', () => {
  it('the native delivery limit is unlimited by default; a finite one and "unlimited" are accepted', () => {
    expect(parseConnection('amqp://h', {}).options.deliveryLimit).toBe(Number.POSITIVE_INFINITY);
    expect(parseConnection('amqp://h?deliveryLimit=unlimited', {}).options.deliveryLimit).toBe(Number.POSITIVE_INFINITY);
    expect(parseConnection('amqp://h', { deliveryLimit: Number.POSITIVE_INFINITY }).options.deliveryLimit).toBe(Number.POSITIVE_INFINITY);
    expect(parseConnection('amqp://h?deliveryLimit=50', {}).options.deliveryLimit).toBe(50);
    configErrorOf(() => parseConnection('amqp://h', { deliveryLimit: Number.NaN }));
    configErrorOf(() => parseConnection('amqp://h', { deliveryLimit: 2.5 }));
  });

  it('classic (at-most-once) delay queues are refused: delayed messages must not be droppable', () => {
    expect(configErrorOf(() => parseConnection('amqp://h', { delayQueueType: 'classic' })).message).toContain('delayQueueType');
    expect(parseConnection('amqp://h?delayQueueType=quorum', {}).options).toBeDefined();
  });

  it('subscription options: strict, CONFIG naming the field', () => {
    expect(parseSubscribeOptions({ queue: 'q' })).toEqual({ queue: 'q' });
    expect(parseSubscribeOptions({})).toEqual({});
    expect(configErrorOf(() => parseSubscribeOptions({ queu: 'typo' })).message).toMatch(/queu/);
    expect(configErrorOf(() => parseSubscribeOptions({ queue: '' })).message).toMatch(/queue/);
  });

  it('prefetch: NaN, negative or fractional never reaches channel.prefetch()', () => {
    expect(prefetchCount(10)).toBe(10);
    expect(prefetchCount(1_000_000)).toBe(65_535);
    expect(prefetchCount(Number.POSITIVE_INFINITY)).toBe(65_535);
    for (const bad of [Number.NaN, -100, 0, 1.5]) configErrorOf(() => prefetchCount(bad));
  });
});
