import { MqError } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import { parseSettings, parseSubscription } from './options.ts';

const configError = (fn: () => unknown): MqError => {
  try {
    fn();
  } catch (err) {
    expect(MqError.is(err, 'CONFIG')).toBe(true);
    return err as MqError;
  }
  throw new Error('expected a CONFIG error');
};

describe('redis-streams options', () => {
  it('defaults: no trimming, 1 MiB, 30 s lease, 1 s block', () => {
    const s = parseSettings('redis://localhost:6379', {});
    expect(s).toMatchObject({ leaseMs: 30_000, blockMs: 1_000, batchSize: 100, maxMessageBytes: 1024 * 1024 });
    expect(s.trim(1_000)).toEqual([]);
  });

  it('reads its options from the query, passes the rest to ioredis, explicit options win', () => {
    const s = parseSettings('rediss://:pw@h:6380/2?maxLen=500&leaseMs=5000&family=6', { leaseMs: 6000 });
    expect(s.leaseMs).toBe(6000);
    expect(s.trim(0)).toEqual(['MAXLEN', '~', '500']);
    expect(s.redisUrl).toBe('rediss://:pw@h:6380/2?family=6');
  });

  it('MINID trimming from maxAgeMs', () => {
    const s = parseSettings('redis://h', { maxAgeMs: 60_000 });
    expect(s.trim(100_000)).toEqual(['MINID', '~', '40000-0']);
  });

  it('rejects unknown options, bad values and two trimming policies, naming the field and never the password', () => {
    expect(configError(() => parseSettings('redis://:s3cret@h', { leaseMS: 1 })).message).toMatch(/leaseMS/);
    const bad = configError(() => parseSettings('redis://:s3cret@h?blockMs=-1', {}));
    expect(bad.message).toMatch(/blockMs/);
    expect(bad.message).not.toMatch(/s3cret/);
    expect(configError(() => parseSettings('redis://h', { maxLen: 10, maxAgeMs: 10 })).message).toMatch(/maxAgeMs/);
    expect(configError(() => parseSettings('redis://h', { maxMessageBytes: 10 })).message).toMatch(/maxMessageBytes/);
  });

  it('rejects other schemes, unparseable URLs and a non-numeric database', () => {
    configError(() => parseSettings('amqp://h', {}));
    expect(configError(() => parseSettings('redis://:s3cret@[bad', {})).message).not.toMatch(/s3cret/);
    configError(() => parseSettings('redis://h/orders', {}));
  });

  it('subscription options override the connection ones; unknown keys are CONFIG', () => {
    const base = parseSettings('redis://h', { blockMs: 200 });
    expect(parseSubscription({ leaseMs: 2000 }, base)).toEqual({ leaseMs: 2000, blockMs: 200, batchSize: 100 });
    expect(configError(() => parseSubscription({ visibilityTimeoutSec: 5 }, base)).message).toMatch(/visibilityTimeoutSec/);
  });
});
