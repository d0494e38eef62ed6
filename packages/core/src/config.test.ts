import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseUrlOptions, redactUrl } from './config.ts';
import { MqError } from './errors.ts';

describe('redactUrl', () => {
  it('hides the password and secret-looking query parameters', () => {
    const out = redactUrl('amqp://user:s3cr3t@host:5672/vh?heartbeat=10&secretKey=abc&token=xyz');
    expect(out).not.toContain('s3cr3t');
    expect(out).not.toContain('abc');
    expect(out).not.toContain('xyz');
    expect(out).toContain('user:***@host:5672');
    expect(out).toContain('heartbeat=10');
  });

  it('never echoes a URL it cannot parse', () => {
    expect(redactUrl('not a url with password=hunter2')).toBe('<unparseable url>');
  });
});

describe('parseUrlOptions', () => {
  const schema = z.object({ retries: z.coerce.number().int().min(0).default(3), password: z.string().optional() }).strict();

  it('merges query parameters under explicit options', () => {
    expect(parseUrlOptions(schema, new URL('x://h?retries=5'), {})).toEqual({ retries: 5 });
    expect(parseUrlOptions(schema, new URL('x://h?retries=5'), { retries: 7 })).toEqual({ retries: 7 });
  });

  it('names bad and unknown options in a CONFIG error without their values', () => {
    let err: unknown;
    try {
      parseUrlOptions(schema, new URL('x://u:pw@h?retries=-1&bogus=hunter2'), { password: 42 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MqError);
    const e = err as MqError;
    expect(e.code).toBe('CONFIG');
    expect(e.message).toContain('retries');
    expect(e.message).toContain('bogus');
    expect(e.message).toContain('password');
    expect(e.message).not.toContain('hunter2');
    expect(e.message).not.toContain('pw@');
  });
});
