import { memory, memoryBroker, wrapAdapter, wrapReceiver } from '@mqkit/testing';
import { expectMqError, uniqueName } from '@mqkit/testing/conformance';
import { describe, expect, it } from 'vitest';
import { connect } from './connect.ts';
import { MqError } from './errors.ts';
import type { Logger } from './logger.ts';
import { HEADERS } from './message.ts';

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(what: string, ms: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await pause(5);
  }
}

const fast = { initialDelayMs: 1, maxDelayMs: 2, multiplier: 2, jitter: false };

function recordingLogger(): Logger & { errors: string[] } {
  const errors: string[] = [];
  const noop = (): void => {};
  return { errors, debug: noop, info: noop, warn: noop, error: (_o, msg) => errors.push(msg ?? '') };
}

describe('consumer runtime under hostile handlers', () => {
  it('keeps the event loop responsive while a handler nacks every delivery, and close() returns', async () => {
    const name = uniqueName('always-nack');
    const client = await connect(`memory://${name}`, { adapters: [memory()] });
    let deliveries = 0;
    const sub = await client.subscribe('t', {
      group: 'g',
      retry: { maxAttempts: Number.POSITIVE_INFINITY },
      handler: async (d) => {
        deliveries += 1;
        await d.nack();
      },
    });
    await Promise.all(Array.from({ length: 50 }, (_, n) => client.publish('t', { n })));
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 100);
    await new Promise((r) => setTimeout(r, 2_000));
    clearInterval(timer);
    // On main: 0 ticks, the loop never yields. 80 % here (the conformance scenario asks 90 %): a
    // unit run shares two cores with every other test file.
    expect(ticks).toBeGreaterThanOrEqual(16);
    expect(deliveries).toBeGreaterThan(50);
    const started = Date.now();
    await sub.close({ timeoutMs: 1_000 });
    await client.close();
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('dead-letters a message the handler nacks at its last attempt: exactly maxAttempts deliveries', async () => {
    const name = uniqueName('nack-limit');
    const client = await connect(`memory://${name}`, { adapters: [memory()] });
    const attempts: number[] = [];
    await client.subscribe('t', {
      group: 'g',
      retry: { maxAttempts: 3 },
      handler: async (d) => {
        attempts.push(d.attempt);
        await d.nack();
      },
    });
    await client.publish('t', { n: 1 });
    await until('the dead letter', 3_000, () => memoryBroker(name).published('t-dlq').length === 1);
    expect(attempts).toEqual([1, 2, 3]);
    const dead = memoryBroker(name).published('t-dlq')[0]!;
    expect(dead.headers[HEADERS.deadLetterAttempts]).toBe('3');
    expect(dead.headers[HEADERS.deadLetterReason]).toBe('max-attempts');
    await client.close();
  });

  it('records what a handler threw in the dead-letter error header, a thrown plain object as JSON', async () => {
    const name = uniqueName('thrown-object');
    const client = await connect(`memory://${name}`, { adapters: [memory()] });
    // Some libraries reject with plain objects; String() of one is "[object Object]".
    const thrown: unknown = { code: 'E_CARD_DECLINED', status: 402 };
    await client.subscribe('t', {
      group: 'g',
      retry: { maxAttempts: 1 },
      handler: () => {
        throw thrown;
      },
    });
    await client.publish('t', { n: 1 });
    await until('the dead letter', 3_000, () => memoryBroker(name).published('t-dlq').length === 1);
    const dead = memoryBroker(name).published('t-dlq')[0]!;
    expect(dead.headers[HEADERS.deadLetterReason]).toBe('handler-failed');
    expect(dead.headers[HEADERS.deadLetterError]).toBe('{"code":"E_CARD_DECLINED","status":402}');
    await client.close();
  });

  it('dead-letters, unhandled, a delivery that arrives past maxAttempts (e.g. after crashes)', async () => {
    const inflated = wrapAdapter(memory(), (driver) => ({
      receiver: async (spec) => {
        const receiver = await driver.receiver(spec);
        return wrapReceiver(receiver, {
          receive: async (max, signal) => (await receiver.receive(max, signal)).map((m) => ({ ...m, deliveryCount: m.deliveryCount + 4 })),
        });
      },
    }));
    const name = uniqueName('past-limit');
    const client = await connect(`memory://${name}`, { adapters: [inflated] });
    let handled = 0;
    await client.subscribe('t', { group: 'g', retry: { maxAttempts: 3 }, handler: () => void (handled += 1) });
    await client.publish('t', { n: 1 });
    await until('the dead letter', 3_000, () => memoryBroker(name).published('t-dlq').length === 1);
    expect(handled).toBe(0);
    expect(memoryBroker(name).published('t-dlq')[0]!.headers[HEADERS.deadLetterAttempts]).toBe('5');
    await client.close();
  });

  it('accepts unlimited attempts: a handler failing 12 times acks on the 13th delivery', async () => {
    const name = uniqueName('unlimited');
    const client = await connect(`memory://${name}`, { adapters: [memory()] });
    const attempts: number[] = [];
    await client.subscribe('t', {
      group: 'g',
      retry: { ...fast, maxAttempts: Number.POSITIVE_INFINITY },
      handler: (d) => {
        attempts.push(d.attempt);
        if (d.attempt <= 12) throw new Error('not yet');
      },
    });
    await client.publish('t', { n: 1 });
    await until('the ack', 5_000, () => attempts.length === 13);
    await pause(20);
    expect(attempts).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
    expect(memoryBroker(name).published('t-dlq')).toHaveLength(0);
    await client.close();
  });

  it('retries a failed dead-letter publish and never leaves the delivery unsettled', async () => {
    let failures = 3;
    const flaky = wrapAdapter(memory(), (driver) => ({
      send: async (envelopes) => {
        if (envelopes.some((e) => e.topic.endsWith('-dlq')) && failures > 0) {
          failures -= 1;
          return envelopes.map(() => ({ ok: false as const, error: new MqError('NOT_FOUND', 'no such topic') }));
        }
        return driver.send(envelopes);
      },
    }));
    const name = uniqueName('dlq-fails');
    const logger = recordingLogger();
    const client = await connect(`memory://${name}`, { adapters: [flaky], logger });
    const attempts: number[] = [];
    await client.subscribe('t', {
      group: 'g',
      retry: { ...fast, maxAttempts: 2 },
      handler: (d) => {
        attempts.push(d.attempt);
        throw new Error('poison');
      },
    });
    await client.publish('t', { n: 1 });
    await until('the dead letter', 5_000, () => memoryBroker(name).published('t-dlq').length === 1);
    expect(attempts).toEqual([1, 2]); // the handler never runs again past its limit
    expect(logger.errors.some((m) => /dead-letter/.test(m))).toBe(true);
    await until('the queue to empty', 2_000, () => memoryBroker(name).depth('t', 'g') === 0);
    await client.close();
  });

  it('a handler that dead-letters itself while the DLQ publish fails gets a rejection, and the message is retried', async () => {
    let failures = 3; // every try of the first dead-letter publish
    const flaky = wrapAdapter(memory(), (driver) => ({
      send: async (envelopes) => {
        if (envelopes.some((e) => e.topic.endsWith('-dlq')) && failures > 0) {
          failures -= 1;
          return envelopes.map(() => ({ ok: false as const, error: new MqError('REJECTED', 'policy') }));
        }
        return driver.send(envelopes);
      },
    }));
    const name = uniqueName('own-dlq-fails');
    const client = await connect(`memory://${name}`, { adapters: [flaky] });
    const outcomes: unknown[] = [];
    await client.subscribe('t', {
      group: 'g',
      retry: { ...fast, maxAttempts: 5 },
      handler: async (d) => {
        outcomes.push(await d.deadLetter('bad input').then(() => 'ok', (e: unknown) => e));
      },
    });
    await client.publish('t', { n: 1 });
    // deadLetter() resolves after the DLQ copy is out and the original acked
    await until('the second deadLetter() to resolve', 5_000, () => outcomes.length === 2);
    expect(memoryBroker(name).published('t-dlq')).toHaveLength(1);
    expect(MqError.is(outcomes[0], 'REJECTED')).toBe(true);
    expect(outcomes[1]).toBe('ok');
    await client.close();
  });
});

describe('subscribe and close options', () => {
  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a misspelt option', { concurrancy: 4 }, /concurrancy/],
    ['a negative prefetch', { prefetch: -100 }, /prefetch/],
    ['a NaN prefetch', { prefetch: Number.NaN }, /prefetch/],
    ['a NaN concurrency', { concurrency: Number.NaN }, /concurrency/],
    ['a string backoff', { retry: { initialDelayMs: 'x' } }, /retry\.initialDelayMs/],
    ['a misspelt retry field', { retry: { maxAttempt: 3 } }, /maxAttempt/],
    ['a zero multiplier', { retry: { multiplier: 0 } }, /retry\.multiplier/],
    ['maxDelayMs below initialDelayMs', { retry: { initialDelayMs: 500, maxDelayMs: 100 } }, /maxDelayMs/],
    ['a fractional maxAttempts', { retry: { maxAttempts: 2.5 } }, /retry\.maxAttempts/],
    ['a non-function middleware', { middleware: ['x'] }, /middleware/],
    ['a codec without decode', { codec: { contentType: 'x', encode: () => new Uint8Array() } }, /codec/],
  ];
  for (const [what, options, field] of bad) {
    it(`rejects ${what} with CONFIG naming the field`, async () => {
      const client = await connect(`memory://${uniqueName('opts')}`, { adapters: [memory()] });
      const err = await client.subscribe('t', { group: 'g', handler: () => {}, ...options }).catch((e: unknown) => e);
      expectMqError(err, 'CONFIG');
      expect((err as MqError).message).toMatch(field);
      await client.close();
    });
  }

  it('rejects bad close options with CONFIG', async () => {
    const client = await connect(`memory://${uniqueName('close-opts')}`, { adapters: [memory()] });
    const sub = await client.subscribe('t', { group: 'g', handler: () => {} });
    expectMqError(await sub.close({ timeoutMs: -1 }).catch((e: unknown) => e), 'CONFIG');
    expectMqError(await sub.close({ timeout: 5 } as never).catch((e: unknown) => e), 'CONFIG');
    await sub.close();
    await client.close();
  });
});

describe('close deadline', () => {
  it('lets a dead-letter publish already on its way finish instead of cutting it off (no second DLQ copy)', async () => {
    let releaseDlq!: () => void;
    const dlqGate = new Promise<void>((r) => (releaseDlq = r));
    const slowDlq = wrapAdapter(memory(), (driver) => ({
      send: async (envelopes) => {
        if (envelopes.some((e) => e.topic.endsWith('-dlq'))) await dlqGate;
        return driver.send(envelopes);
      },
    }));
    const name = uniqueName('close-settling');
    const client = await connect(`memory://${name}`, { adapters: [slowDlq] });
    const sub = await client.subscribe('t', { group: 'g', retry: { maxAttempts: 1 }, handler: () => { throw new Error('poison'); } });
    await client.publish('t', { n: 1 });
    await until('the dead-letter publish to start', 2_000, () => sub.inFlight === 1);
    await pause(20);
    const closing = sub.close({ timeoutMs: 50 });
    await pause(100); // past the deadline: the settle is still on its way
    releaseDlq();
    await closing;
    await client.close();
    expect(memoryBroker(name).published('t-dlq')).toHaveLength(1);
    expect(memoryBroker(name).depth('t', 'g')).toBe(0); // acked after the DLQ copy: no redelivery
  });
});
