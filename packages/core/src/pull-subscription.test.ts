import { describe, expect, it } from 'vitest';
import { AttemptLedger } from './attempt-ledger.ts';
import type { DriverDelivery, DriverReceiver, ReceivedMessage, SettleResults, SubscriptionSpec } from './driver/driver.ts';
import { MqError } from './errors.ts';
import { silentLogger } from './logger.ts';
import { ledgerKey, PullSubscription } from './pull-subscription.ts';

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, timeoutMs = 2_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await pause(5);
  }
}

interface Msg extends ReceivedMessage {
  readonly handle: string;
}

function msg(id: string, deliveryCount = 1, key?: string, handle = `${id}#${deliveryCount}`): Msg {
  return { id, deliveryCount, handle, envelope: { id, topic: 't', key, headers: {}, body: new Uint8Array(), timestamp: 0 } };
}

/** A scripted receiver: tests queue what receive() returns and read back every settle call. */
class FakeReceiver implements DriverReceiver<Msg> {
  readonly batchSize = 10;
  readonly scope = 'fake';
  leaseMs: number | undefined = undefined;
  redeliversAcked = false;
  readonly inbox: Msg[] = [];
  readonly calls: Array<{ op: string; ids: string[]; handles: string[]; arg?: number }> = [];
  receiveError: MqError | undefined;
  receives = 0;
  closed = false;
  #wake: (() => void) | undefined;

  push(...messages: Msg[]): void {
    this.inbox.push(...messages);
    this.#wake?.();
  }

  async receive(max: number, signal: AbortSignal): Promise<readonly Msg[]> {
    this.receives += 1;
    if (this.receiveError) throw this.receiveError;
    if (this.inbox.length === 0 && !signal.aborted) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    return this.inbox.splice(0, max);
  }

  #record(op: string, messages: readonly Msg[], arg?: number): SettleResults {
    this.calls.push({ op, ids: messages.map((m) => m.id), handles: messages.map((m) => m.handle), ...(arg === undefined ? {} : { arg }) });
    return undefined;
  }

  async ack(messages: readonly Msg[]): Promise<SettleResults> {
    return this.#record('ack', messages);
  }

  async nack(messages: readonly Msg[], delayMs: number): Promise<SettleResults> {
    return this.#record('nack', messages, delayMs);
  }

  async extend(messages: readonly Msg[], leaseMs: number): Promise<SettleResults> {
    return this.#record('extend', messages, leaseMs);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  ops(op: string): string[] {
    return this.calls.filter((c) => c.op === op).flatMap((c) => c.ids);
  }
}

function start(receiver: FakeReceiver, spec: Partial<SubscriptionSpec> = {}, errors: MqError[] = []) {
  const deliveries: DriverDelivery[] = [];
  const full: SubscriptionSpec = { topic: 't', group: 'g', maxInFlight: 8, ordered: false, maxAttempts: 5, deadLetterTopic: 't-dlq', options: {}, ...spec };
  const sub = new PullSubscription(receiver, {
    spec: full,
    sink: { deliver: (d) => void deliveries.push(d), error: (e) => void errors.push(e) },
    logger: silentLogger,
    ledger: new AttemptLedger(),
  }).start();
  return { sub, deliveries };
}

describe('PullSubscription', () => {
  it('acks of one turn go out as one batch call', async () => {
    const r = new FakeReceiver();
    const { sub, deliveries } = start(r);
    r.push(msg('a'), msg('b'), msg('c'));
    await until('deliveries', () => deliveries.length === 3);
    await Promise.all(deliveries.map((d) => d.ack()));
    expect(r.calls).toEqual([{ op: 'ack', ids: ['a', 'b', 'c'], handles: ['a#1', 'b#1', 'c#1'] }]);
    await sub.close();
    expect(r.closed).toBe(true);
  });

  it('never holds more than maxInFlight', async () => {
    const r = new FakeReceiver();
    const { sub, deliveries } = start(r, { maxInFlight: 3 });
    r.push(...['a', 'b', 'c', 'd', 'e'].map((id) => msg(id)));
    await until('deliveries', () => deliveries.length === 3);
    await pause(20);
    expect(deliveries).toHaveLength(3);
    await deliveries[0]!.ack();
    await until('the next', () => deliveries.length === 4);
    await sub.close();
  });

  it('ordered: hands over one message per lane; after a nack gives the later ones back, uncounted', async () => {
    const r = new FakeReceiver();
    const { sub, deliveries } = start(r, { ordered: true });
    r.push(msg('k1', 1, 'k'), msg('k2', 1, 'k'), msg('x1', 1, 'x'));
    await until('the lane heads', () => deliveries.length === 2);
    expect(deliveries.map((d) => d.envelope.id)).toEqual(['k1', 'x1']);
    await deliveries[0]!.nack(100);
    expect(r.calls.filter((c) => c.op === 'nack')).toEqual([{ op: 'nack', ids: ['k1'], handles: ['k1#1'], arg: 100 }]);
    await until('the give-back', () => r.ops('nack').includes('k2'));
    expect(r.calls.at(-1)).toMatchObject({ op: 'nack', ids: ['k2'], arg: 100 });
    // The broker redelivers both (counting the give-back): k2 is still on its first attempt.
    r.push(msg('k1', 2, 'k'), msg('k2', 2, 'k'));
    await until('k1 again', () => deliveries.length === 3);
    expect(deliveries[2]!.attempt).toBe(2);
    await deliveries[2]!.ack();
    await until('k2', () => deliveries.length === 4);
    expect(deliveries[3]!.envelope.id).toBe('k2');
    expect(deliveries[3]!.attempt).toBe(1);
    await sub.close();
  });

  it('extends the lease of unsettled messages every third of it, and stops after the settle', async () => {
    const r = new FakeReceiver();
    r.leaseMs = 900; // extended every 300 ms
    const { sub, deliveries } = start(r);
    r.push(msg('a'));
    await until('the delivery', () => deliveries.length === 1);
    await until('two extensions', () => r.ops('extend').length >= 2, 1_500);
    expect(r.calls.find((c) => c.op === 'extend')).toMatchObject({ ids: ['a'], arg: 900 });
    await deliveries[0]!.ack();
    const extended = r.ops('extend').length;
    await pause(700);
    expect(r.ops('extend').length).toBe(extended);
    await sub.close();
  });

  it('a redelivery of a message still being handled is not handed over again; its settle uses the newest copy', async () => {
    const r = new FakeReceiver();
    const { sub, deliveries } = start(r);
    r.push(msg('a', 1));
    await until('the delivery', () => deliveries.length === 1);
    r.push(msg('a', 2, undefined, 'a#fresh'));
    await until('the redelivery was received', () => r.inbox.length === 0);
    await pause(20);
    expect(deliveries).toHaveLength(1);
    await deliveries[0]!.ack();
    expect(r.calls).toEqual([{ op: 'ack', ids: ['a'], handles: ['a#fresh'] }]);
    await sub.close();
  });

  it('a copy of a message acked before is acked again without reaching core (a receiver that redeliversAcked)', async () => {
    const r = new FakeReceiver();
    r.redeliversAcked = true;
    const { sub, deliveries } = start(r);
    r.push(msg('a'));
    await until('the delivery', () => deliveries.length === 1);
    await deliveries[0]!.ack();
    r.push(msg('a', 1, undefined, 'a#copy'));
    await until('the re-ack', () => r.calls.length === 2);
    expect(r.calls[1]).toEqual({ op: 'ack', ids: ['a'], handles: ['a#copy'] });
    expect(deliveries).toHaveLength(1);
    await sub.close();
  });

  it('a copy of a message acked before reaches core again when the receiver does not say acked messages come back', async () => {
    const r = new FakeReceiver();
    const { sub, deliveries } = start(r);
    r.push(msg('a'));
    await until('the delivery', () => deliveries.length === 1);
    await deliveries[0]!.ack();
    r.push(msg('a', 2, undefined, 'a#copy'));
    await until('the copy', () => deliveries.length === 2);
    expect(deliveries[1]!.attempt).toBe(2);
    await sub.close();
  });

  it('attempts strictly increase even when the broker repeats a count', async () => {
    const r = new FakeReceiver();
    const { sub, deliveries } = start(r);
    r.push(msg('a', 1));
    await until('the delivery', () => deliveries.length === 1);
    await deliveries[0]!.nack(0);
    r.push(msg('a', 1, undefined, 'a#again'));
    await until('the redelivery', () => deliveries.length === 2);
    expect(deliveries.map((d) => d.attempt)).toEqual([1, 2]);
    await sub.close();
  });

  it('close gives back what is unsettled (held-back lane messages uncounted) and refuses late settles', async () => {
    const r = new FakeReceiver();
    const ledger = new AttemptLedger();
    const deliveries: DriverDelivery[] = [];
    const spec: SubscriptionSpec = { topic: 't', group: 'g', maxInFlight: 8, ordered: true, maxAttempts: 5, deadLetterTopic: 'd', options: {} };
    const sub = new PullSubscription(r, { spec, sink: { deliver: (d) => void deliveries.push(d), error: () => {} }, logger: silentLogger, ledger }).start();
    r.push(msg('k1', 1, 'k'), msg('k2', 1, 'k'));
    await until('the head', () => deliveries.length === 1);
    await pause(10);
    await sub.close();
    // Both go back (k2 through release(), here its default nack()).
    expect(r.calls).toEqual(
      expect.arrayContaining([
        { op: 'nack', ids: ['k1'], handles: ['k1#1'], arg: 0 },
        { op: 'nack', ids: ['k2'], handles: ['k2#1'], arg: 0 },
      ]),
    );
    expect(r.calls).toHaveLength(2);
    await expect(deliveries[0]!.ack()).rejects.toMatchObject({ code: 'CLOSED' });
    // k1 reached a handler (its delivery counts); k2 did not.
    expect(ledger.attempt(ledgerKey('fake', 'k1'), 2)).toBe(2);
    expect(ledger.attempt(ledgerKey('fake', 'k2'), 2)).toBe(1);
  });

  it('gives back through release() what no handler saw, when the driver has it', async () => {
    const r = new FakeReceiver();
    const released: string[] = [];
    Object.assign(r, {
      release: async (messages: readonly Msg[], delayMs: number) => {
        released.push(...messages.map((m) => `${m.id}@${delayMs}`));
      },
    });
    const { sub, deliveries } = start(r, { ordered: true });
    r.push(msg('k1', 1, 'k'), msg('k2', 1, 'k'), msg('k3', 1, 'k'));
    await until('the head', () => deliveries.length === 1);
    await deliveries[0]!.nack(50);
    await until('the give-back', () => released.length === 2);
    expect(released).toEqual(['k2@50', 'k3@50']);
    expect(r.ops('nack')).toEqual(['k1']);
    await sub.close();
  });

  it('backs off after failed receives and reports the first failure', async () => {
    const r = new FakeReceiver();
    r.receiveError = new MqError('CONNECTION', 'broker down');
    const errors: MqError[] = [];
    const { sub, deliveries } = start(r, {}, errors);
    await pause(500);
    // 200 ms, then 400 ms (jittered down to half): a handful of calls, not a spin.
    expect(r.receives).toBeGreaterThanOrEqual(2);
    expect(r.receives).toBeLessThanOrEqual(4);
    expect(errors.map((e) => e.code)).toEqual(['CONNECTION']);
    r.receiveError = undefined;
    r.push(msg('a'));
    await until('recovery', () => deliveries.length === 1, 3_000);
    await sub.close();
  });

  it('a failed settle rejects that message only', async () => {
    const r = new FakeReceiver();
    r.ack = async (messages) => messages.map((m) => (m.id === 'b' ? new MqError('NOT_FOUND', 'receipt expired') : undefined));
    const { sub, deliveries } = start(r);
    r.push(msg('a'), msg('b'));
    await until('deliveries', () => deliveries.length === 2);
    const [a, b] = await Promise.allSettled(deliveries.map((d) => d.ack()));
    expect(a?.status).toBe('fulfilled');
    expect(b).toMatchObject({ status: 'rejected', reason: { code: 'NOT_FOUND' } });
    await sub.close();
  });
});

const lanedMsg = (id: string): ReceivedMessage => ({ id, deliveryCount: 1, envelope: { id, topic: 't', key: 'k', headers: {}, body: new Uint8Array(), timestamp: 0 } });

/** Hands out what the test pushes; an extension of k2 hangs until the test lets it go. */
class SlowExtendReceiver implements DriverReceiver {
  readonly batchSize = 10;
  readonly scope = 'slow-extend';
  readonly leaseMs = 3000; // extended every 1 s, checked every 250 ms
  readonly log: string[] = [];
  readonly #inbox: ReceivedMessage[] = [];
  #wake: (() => void) | undefined;
  #releaseExtends: Array<() => void> = [];

  push(message: ReceivedMessage): void {
    this.#inbox.push(message);
    this.#wake?.();
  }

  async receive(max: number, signal: AbortSignal): Promise<readonly ReceivedMessage[]> {
    if (this.#inbox.length === 0 && !signal.aborted) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    return this.#inbox.splice(0, max);
  }

  async ack(messages: readonly ReceivedMessage[]): Promise<SettleResults> {
    for (const m of messages) this.log.push(`ack ${m.id}`);
  }

  async nack(messages: readonly ReceivedMessage[]): Promise<SettleResults> {
    for (const m of messages) this.log.push(`nack ${m.id}`);
  }

  async extend(messages: readonly ReceivedMessage[]): Promise<SettleResults> {
    for (const m of messages) this.log.push(`extend ${m.id}`);
    if (messages.some((m) => m.id === 'k2')) await new Promise<void>((resolve) => this.#releaseExtends.push(resolve));
    for (const m of messages) this.log.push(`extended ${m.id}`);
  }

  releaseExtends(): void {
    for (const release of this.#releaseExtends.splice(0)) release();
  }

  async close(): Promise<void> {}
}

describe('PullSubscription: giving back an ordered lane', () => {
  it("waits for a lease extension on its way, as the nacked head does: each settle uses the message's newest handle", async () => {
    const r = new SlowExtendReceiver();
    const deliveries: DriverDelivery[] = [];
    const sub = new PullSubscription(r, {
      spec: { topic: 't', group: 'g', maxInFlight: 8, ordered: true, maxAttempts: 5, deadLetterTopic: 't-dlq', options: {} },
      sink: { deliver: (d) => void deliveries.push(d), error: () => {} },
      logger: silentLogger,
      ledger: new AttemptLedger(),
    }).start();
    r.push(lanedMsg('k1'));
    await until('the lane head', () => deliveries.length === 1);
    await pause(500);
    // Received half a lease period later: its lease is extended on its own, after k1's.
    r.push(lanedMsg('k2'));
    await until("k2's extension", () => r.log.includes('extend k2'), 5_000);
    expect(r.log).toContain('extended k1');
    const nacked = deliveries[0]!.nack(0);
    await pause(50);
    // The held-back successor is not given back while its extension runs (the stale handle).
    expect(r.log).not.toContain('nack k2');
    r.releaseExtends();
    await nacked;
    await until('the give-back', () => r.log.includes('nack k2'));
    expect(r.log.indexOf('nack k2')).toBeGreaterThan(r.log.indexOf('extended k2'));
    await sub.close();
  });
});
