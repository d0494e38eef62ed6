import { memory, memoryBroker, wrapAdapter, wrapReceiver } from '@mqkit/testing';
import { uniqueName } from '@mqkit/testing/conformance';
import { describe, expect, it } from 'vitest';
import { connect, loadAdapterPackage } from './connect.ts';
import type { ReceivedMessage, SettleResults } from './driver/driver.ts';
import { MqError } from './errors.ts';

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function open(options: Parameters<typeof connect>[1] = {}) {
  const name = uniqueName('client');
  const client = await connect(`memory://${name}`, { adapters: [memory()], ...options });
  return { client, broker: memoryBroker(name) };
}

describe('reliable send', () => {
  it('retries retryable broker failures until the broker accepts', async () => {
    const { client, broker } = await open({ publish: { initialDelayMs: 5, maxDelayMs: 10 } });
    broker.injectSendFailures(new MqError('CONNECTION', 'broker restarting'), new MqError('NOT_CONFIRMED', 'nacked'));
    const receipt = await client.publish('orders', { n: 1 });
    expect(broker.published('orders').map((e) => e.id)).toEqual([receipt.id]);
    await client.close();
  });

  it('rejects at once, typed, on a failure that is not retryable', async () => {
    const { client, broker } = await open();
    broker.injectSendFailures(new MqError('REJECTED', 'policy says no'));
    const err = await client.publish('orders', { n: 1 }).catch((e: unknown) => e);
    expect(MqError.is(err, 'REJECTED')).toBe(true);
    expect((err as MqError).retryable).toBe(false);
    expect(broker.published('orders')).toHaveLength(0);
    await client.close();
  });

  it('gives up on retryable failures at the publish deadline', async () => {
    const { client, broker } = await open({ publish: { timeoutMs: 150, initialDelayMs: 10, maxDelayMs: 20 } });
    broker.injectSendFailures(...Array.from({ length: 1000 }, () => new MqError('CONNECTION', 'down')));
    const started = Date.now();
    const err = await client.publish('orders', { n: 1 }).catch((e: unknown) => e);
    expect(MqError.is(err, 'CONNECTION')).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_000);
    await client.close();
  });

  it('batches concurrent publishes into few driver sends, each resolving on its own outcome', async () => {
    const sends: number[] = [];
    const counting = wrapAdapter(memory(), (driver) => ({
      send: (envelopes) => {
        sends.push(envelopes.length);
        return driver.send(envelopes);
      },
    }));
    const client = await connect(`memory://${uniqueName('batch')}`, { adapters: [counting] });
    const receipts = await Promise.all(Array.from({ length: 100 }, (_, n) => client.publish('t', { n })));
    expect(new Set(receipts.map((r) => r.id)).size).toBe(100);
    expect(sends.reduce((a, b) => a + b, 0)).toBe(100);
    expect(sends.length).toBeLessThanOrEqual(2);
    await client.close();
  });
  it('keeps one key in publish order across a retry, without holding back other keys', async () => {
    const { client, broker } = await open({ publish: { initialDelayMs: 30, maxDelayMs: 30 } });
    broker.injectSendFailures(new MqError('CONNECTION', 'blip'));
    const first = client.publish('t', { n: 1 }, { key: 'k' });
    await pause(5); // the first send failed; its retry waits 30 ms
    const second = client.publish('t', { n: 2 }, { key: 'k' });
    const other = client.publish('t', { n: 3 }, { key: 'other' });
    await Promise.all([first, second, other]);
    const order = broker.published('t').map((e) => (JSON.parse(Buffer.from(e.body).toString()) as { n: number }).n);
    expect(order).toEqual([3, 1, 2]);
    await client.close();
  });

  it('never has two driver sends with the same key at once, even past the batch size', async () => {
    const busy = new Set<string>();
    let overlap = false;
    let sends = 0;
    const slow = wrapAdapter(memory(), (driver) => ({
      capabilities: { ...driver.capabilities, maxBatchSize: 10 },
      send: async (envelopes) => {
        sends += 1;
        const keys = [...new Set(envelopes.map((e) => e.key ?? ''))];
        for (const k of keys) if (busy.has(k)) overlap = true;
        keys.forEach((k) => busy.add(k));
        await pause(5);
        keys.forEach((k) => busy.delete(k));
        return driver.send(envelopes);
      },
    }));
    const name = uniqueName('lanes');
    const client = await connect(`memory://${name}`, { adapters: [slow] });
    const outcomes = await client.publishBatch(Array.from({ length: 35 }, (_, n) => ({ topic: 't', payload: { n }, key: `k${n % 2}` })));
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(overlap).toBe(false);
    expect(sends).toBeGreaterThanOrEqual(4);
    for (const k of ['k0', 'k1']) {
      const ns = memoryBroker(name).published('t').filter((e) => e.key === k).map((e) => (JSON.parse(Buffer.from(e.body).toString()) as { n: number }).n);
      expect(ns).toEqual([...ns].sort((a, b) => a - b));
    }
    await client.close();
  });
});

/**
 * A driver whose calls are ordered (`orderedSends`), like the Kafka adapter's: one call at a time
 * in call order; a failed call fails, unsent, the calls queued behind it and those made before
 * the next turn of the event loop. `failCalls` lists which calls (1-based) fail.
 */
function orderedAdapter(failCalls: number[]) {
  const stats = { calls: 0, maxQueued: 0, keysInFlightTwice: false };
  const inFlightKeys = new Map<string, number>();
  let chain: Promise<unknown> = Promise.resolve();
  let queued = 0;
  let failing: MqError | undefined;
  const adapter = wrapAdapter(memory(), (driver) => ({
    capabilities: { ...driver.capabilities, maxBatchSize: 10, orderedSends: true },
    send: (envelopes) => {
      const fail = (error: MqError) => envelopes.map(() => ({ ok: false as const, error }));
      if (failing) return Promise.resolve(fail(new MqError('NOT_CONFIRMED', 'not sent: an earlier send failed')));
      const keys = envelopes.map((e) => e.key ?? '');
      for (const k of new Set(keys)) {
        const n = (inFlightKeys.get(k) ?? 0) + 1;
        inFlightKeys.set(k, n);
        if (n > 1) stats.keysInFlightTwice = true;
      }
      queued += 1;
      stats.maxQueued = Math.max(stats.maxQueued, queued);
      const run = chain.then(async () => {
        if (failing) return fail(new MqError('NOT_CONFIRMED', 'not sent: an earlier send failed'));
        await pause(2);
        stats.calls += 1;
        if (failCalls.includes(stats.calls)) {
          failing = new MqError('CONNECTION', 'connection lost');
          return fail(failing);
        }
        return driver.send(envelopes);
      });
      chain = run.finally(() => {
        queued -= 1;
        for (const k of new Set(keys)) inFlightKeys.set(k, inFlightKeys.get(k)! - 1);
        if (queued === 0 && failing) setImmediate(() => (failing = undefined));
      });
      return run;
    },
  }));
  return { adapter, stats };
}

describe('reliable send to a driver with ordered calls', () => {
  function order(name: string, key: string): number[] {
    return memoryBroker(name)
      .published('t')
      .filter((e) => e.key === key)
      .map((e) => (JSON.parse(Buffer.from(e.body).toString()) as { n: number }).n);
  }

  it('pipelines several batches of one key, in publish order', async () => {
    const { adapter, stats } = orderedAdapter([]);
    const name = uniqueName('ordered');
    const client = await connect(`memory://${name}`, { adapters: [adapter] });
    await Promise.all(Array.from({ length: 60 }, (_, n) => client.publish('t', { n }, { key: `k${n % 2}` })));
    expect(stats.keysInFlightTwice).toBe(true);
    expect(stats.maxQueued).toBeGreaterThan(1);
    for (const k of ['k0', 'k1']) expect(order(name, k)).toEqual(Array.from({ length: 30 }, (_, i) => 2 * i + Number(k[1])));
    await client.close();
  });

  it('keeps each key in publish order when a pipelined batch fails and those behind it are refused', async () => {
    const { adapter, stats } = orderedAdapter([2, 5]);
    const name = uniqueName('ordered-fail');
    const client = await connect(`memory://${name}`, { adapters: [adapter], publish: { initialDelayMs: 1, maxDelayMs: 20 } });
    const first = Array.from({ length: 60 }, (_, n) => client.publish('t', { n }, { key: `k${n % 3}` }));
    await pause(3); // more publishes while the first batches are in flight and failing
    const second = Array.from({ length: 60 }, (_, i) => client.publish('t', { n: 60 + i }, { key: `k${i % 3}` }));
    await Promise.all([...first, ...second]);
    expect(stats.calls).toBeGreaterThan(5);
    for (const k of ['k0', 'k1', 'k2']) {
      const got = order(name, k);
      expect(got).toEqual(Array.from({ length: 40 }, (_, i) => 3 * i + Number(k[1])));
    }
    await client.close();
  });
});

describe('consumer runtime', () => {
  it('stops receiving when handlers fall behind and never holds more than concurrency + prefetch', async () => {
    let outstanding = 0;
    let peak = 0;
    const tracking = wrapAdapter(memory(), (driver) => ({
      receiver: async (spec) => {
        const receiver = await driver.receiver(spec);
        const settled = <A extends unknown[]>(f: (ms: readonly ReceivedMessage[], ...a: A) => Promise<SettleResults>) =>
          async (ms: readonly ReceivedMessage[], ...a: A) => {
            outstanding -= ms.length;
            return f(ms, ...a);
          };
        return wrapReceiver(receiver, {
          receive: async (max, signal) => {
            const got = await receiver.receive(max, signal);
            outstanding += got.length;
            peak = Math.max(peak, outstanding);
            return got;
          },
          ack: settled((ms) => receiver.ack(ms)),
          nack: settled((ms, delayMs: number) => receiver.nack(ms, delayMs)),
        });
      },
    }));
    const client = await connect(`memory://${uniqueName('bp')}`, { adapters: [tracking] });
    let done = 0;
    await client.subscribe('t', { group: 'g', concurrency: 2, prefetch: 2, handler: async () => { await pause(5); done += 1; } });
    await Promise.all(Array.from({ length: 40 }, (_, n) => client.publish('t', { n })));
    while (done < 40) await pause(10);
    // Intake stops at concurrency + prefetch, and that room is used.
    expect(peak).toBe(4);
    await client.close();
  });

  it('abandons handlers at the close deadline: their late settle is refused and the message comes back', async () => {
    const name = uniqueName('abandon');
    const first = await connect(`memory://${name}`, { adapters: [memory()] });
    let lateAck: unknown;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let signalled = false;
    await first.subscribe('t', {
      group: 'g',
      handler: async (d) => {
        d.signal.addEventListener('abort', () => (signalled = true));
        await gate;
        lateAck = await d.ack().catch((e: unknown) => e);
      },
    });
    await first.publish('t', { n: 1 });
    await pause(30);
    await first.close({ timeoutMs: 50 });
    expect(signalled).toBe(true);
    release();
    await pause(10);
    expect(MqError.is(lateAck, 'CLOSED')).toBe(true);
    expect(memoryBroker(name).depth('t', 'g')).toBe(1);
  });

  it('lets a handler destructure its delivery: ack and nack stay bound, signal is live', async () => {
    const client = await connect(`memory://${uniqueName('destructure')}`, { adapters: [memory()] });
    const seen: Array<{ attempt: number; aborted: boolean; settledAfter: boolean }> = [];
    await client.subscribe<{ n: number }>('t', {
      group: 'g',
      retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 1, jitter: false },
      handler: async (d) => {
        const { ack, nack, attempt, signal } = d;
        if (attempt === 1) await nack({ delayMs: 1 });
        else await ack();
        seen.push({ attempt, aborted: signal.aborted, settledAfter: d.settled });
      },
    });
    await client.publish('t', { n: 1 });
    const deadline = Date.now() + 5_000;
    while (seen.length < 2 && Date.now() < deadline) await pause(10);
    expect(seen).toEqual([
      { attempt: 1, aborted: false, settledAfter: true },
      { attempt: 2, aborted: false, settledAfter: true },
    ]);
    await client.close();
  });

  it('rejects ordered subscriptions on adapters without key ordering', async () => {
    const unordered = wrapAdapter(memory(), (driver) => ({ capabilities: { ...driver.capabilities, ordering: 'none' } }));
    const client = await connect(`memory://${uniqueName('unordered')}`, { adapters: [unordered] });
    const err = await client.subscribe('t', { group: 'g', ordered: true, handler: () => {} }).catch((e: unknown) => e);
    expect(MqError.is(err, 'UNSUPPORTED')).toBe(true);
    await client.close();
  });

  it('validates subscribe options with CONFIG errors', async () => {
    const { client } = await open();
    for (const bad of [{ group: '' }, { group: 'g', concurrency: 0 }, { group: 'g', retry: { maxAttempts: 0 } }]) {
      const err = await client.subscribe('t', { handler: () => {}, ...bad }).catch((e: unknown) => e);
      expect(MqError.is(err, 'CONFIG')).toBe(true);
    }
    await client.close();
  });
});

describe('connect', () => {
  it('refuses an unknown scheme, listing the known ones, without echoing secrets', async () => {
    const err = await connect('nats://user:hunter2@host:4222').catch((e: unknown) => e);
    expect(MqError.is(err, 'CONFIG')).toBe(true);
    expect((err as Error).message).toContain('kafka');
    expect((err as Error).message).not.toContain('hunter2');
  });

  it('says which package to install when an adapter is missing', async () => {
    const err = await loadAdapterPackage('rocketmq', '@mqkit/not-installed', 'rocketmq://ak:sk-secret@127.0.0.1:8081').catch((e: unknown) => e);
    expect(MqError.is(err, 'CONFIG')).toBe(true);
    expect((err as Error).message).toContain('@mqkit/not-installed');
    expect((err as Error).message).not.toContain('sk-secret');
  });

  it('refuses URLs without a scheme and bad adapter options', async () => {
    expect(MqError.is(await connect('localhost:9092').catch((e: unknown) => e), 'CONFIG')).toBe(true);
    const bad = await connect('memory://x?maxMessageBytes=lots', { adapters: [memory()] }).catch((e: unknown) => e);
    expect(MqError.is(bad, 'CONFIG')).toBe(true);
    expect((bad as Error).message).toContain('maxMessageBytes');
    const unknown = await connect('memory://x', { adapters: [memory()], options: { colour: 'blue' } }).catch((e: unknown) => e);
    expect(MqError.is(unknown, 'CONFIG')).toBe(true);
    expect(MqError.is(await connect('memory://x', { adapters: [memory()], publish: { timeoutMs: -1 } }).catch((e: unknown) => e), 'CONFIG')).toBe(true);
  });

  it('loads the memory adapter by scheme when none is passed', async () => {
    const client = await connect(`memory://${uniqueName('auto')}`);
    expect(client.adapter).toBe('memory');
    await client.close();
  });
});
