import { describe, expect, it } from 'vitest';
import { AttemptLedger } from './attempt-ledger.ts';
import type { DriverDelivery, DriverReceiver, ReceivedMessage, SettleResults } from './driver/driver.ts';
import { silentLogger } from './logger.ts';
import { PullSubscription } from './pull-subscription.ts';

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, timeoutMs = 3_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await pause(5);
  }
}

const msg = (id: string): ReceivedMessage => ({ id, deliveryCount: 1, envelope: { id, topic: 't', key: 'k', headers: {}, body: new Uint8Array(), timestamp: 0 } });

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
    r.push(msg('k1'));
    await until('the lane head', () => deliveries.length === 1);
    await pause(500);
    // Received half a lease period later: its lease is extended on its own, after k1's.
    r.push(msg('k2'));
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
