import { EventEmitter } from 'node:events';
import { MqError, type DriverDelivery, type SubscriptionSpec } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import type { ConnectionManager, Link, LinkUser } from './connection.ts';
import type { Publisher } from './publisher.ts';
import { RabbitSubscription } from './subscription.ts';
import type { Topology } from './topology.ts';
import { toPublishOptions } from './wire.ts';

/** Just enough of an amqplib Channel to drive the subscription's bookkeeping. */
class FakeChannel extends EventEmitter {
  onMessage: ((m: unknown) => void) | undefined;
  readonly acked: number[] = [];
  /** Every ack frame as sent: [tag, multiple]. */
  readonly ackFrames: Array<[number, boolean]> = [];
  readonly nacked: Array<{ tag: number; requeue: boolean }> = [];
  closed = false;
  async prefetch(): Promise<void> {}
  async consume(_q: string, cb: (m: unknown) => void): Promise<{ consumerTag: string }> {
    this.onMessage = cb;
    return { consumerTag: 'ctag' };
  }
  async cancel(): Promise<void> {}
  async close(): Promise<void> {
    this.closed = true;
    this.emit('close');
  }
  ack(m: { fields: { deliveryTag: number } }, allUpTo?: boolean): void {
    if (this.closed) throw new Error('Channel closed');
    this.acked.push(m.fields.deliveryTag);
    this.ackFrames.push([m.fields.deliveryTag, allUpTo === true]);
  }
  nack(m: { fields: { deliveryTag: number } }, _all: boolean, requeue: boolean): void {
    if (this.closed) throw new Error('Channel closed');
    this.nacked.push({ tag: m.fields.deliveryTag, requeue });
  }
}

let tag = 0;
function message(id: string, key: string | undefined, extraHeaders: Record<string, unknown> = {}, priorAttempts?: number) {
  const options = toPublishOptions({ id, topic: 't', key, headers: { 'content-type': 'application/json' }, body: new Uint8Array([1]), timestamp: 1 }, priorAttempts);
  tag += 1;
  return {
    content: Buffer.from([1]),
    fields: { deliveryTag: tag, redelivered: 'x-delivery-count' in extraHeaders, exchange: 't', routingKey: key ?? '', consumerTag: 'ctag' },
    properties: { ...options, headers: { ...options.headers, ...extraHeaders } },
  };
}

async function start(ordered: boolean, overrides: Partial<SubscriptionSpec> = {}, publisher: Partial<Publisher> = {}) {
  const channels: FakeChannel[] = [];
  const users: LinkUser[] = [];
  const link: Link = {
    epoch: 1,
    model: {
      createChannel: async () => {
        const ch = new FakeChannel();
        channels.push(ch);
        return ch;
      },
    } as unknown as Link['model'],
  };
  const manager = {
    closed: false,
    link,
    waitForLink: async () => link,
    attach: async (u: LinkUser) => void users.push(u),
    detach: () => {},
  } as unknown as ConnectionManager;
  const topology = { enabled: false, forgetQueue: () => {} } as unknown as Topology;
  const logger = { debug() {}, info() {}, warn() {}, error() {} };
  const delivered: DriverDelivery[] = [];
  const spec: SubscriptionSpec = { topic: 't', group: 'g', maxInFlight: 10, ordered, maxAttempts: 5, deadLetterTopic: 't-dlq', options: {}, ...overrides };
  const sub = new RabbitSubscription({ manager, topology, publisher: publisher as Publisher, logger }, spec, { deliver: (d) => delivered.push(d), error: () => {} }, {});
  await sub.start();
  const ch = channels[0]!;
  return { sub, ch, delivered, users, push: (m: unknown) => ch.onMessage!(m) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('RabbitSubscription', () => {
  it('prefetch NaN or negative is CONFIG and never reaches channel.prefetch()', async () => {
    for (const maxInFlight of [Number.NaN, -100]) {
      const err = await start(false, { maxInFlight }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(MqError.is(err) && err.code).toBe('CONFIG');
    }
  });

  it('a delayed publish not due yet is parked in the group\'s delay queue (not handed to core), then acked', async () => {
    const sent: Array<{ exchange: string; routingKey: string; options: { expiration?: string | number; headers?: Record<string, unknown> } }> = [];
    const publishAll = async (items: typeof sent) => {
      sent.push(...items);
      return items.map(() => undefined);
    };
    const { delivered, push, ch } = await start(false, {}, { publishAll } as unknown as Partial<Publisher>);
    push(message('later', undefined, { 'x-mqkit-deliver-at': Date.now() + 5_000 }));
    push(message('forged', undefined, { 'x-mqkit-deliver-at': Date.now() + 30 * 24 * 3600_000 }));
    await sleep(10);
    expect(delivered.map((d) => d.envelope.id)).toEqual(['forged']); // beyond the longest delay: not honoured
    expect(sent).toHaveLength(1);
    expect(sent[0]!.exchange).toBe('');
    expect(sent[0]!.routingKey).toBe('t.g~retry~5000');
    expect(Number(sent[0]!.options.expiration)).toBeGreaterThan(4_900);
    expect(Number(sent[0]!.options.expiration)).toBeLessThanOrEqual(5_000);
    expect(sent[0]!.options.headers?.['x-mqkit-deliver-at']).toBeUndefined();
    expect(ch.acked).toHaveLength(1);
  });

  it('a delayed publish whose parking copy is refused stays unacked and is parked again after a backoff, never handed over early', async () => {
    let calls = 0;
    const publishAll = async (items: unknown[]) => {
      calls += 1;
      return items.map(() => (calls === 1 ? new MqError('UNROUTABLE', 'no such delay queue') : undefined));
    };
    const { delivered, push, ch } = await start(false, {}, { publishAll } as unknown as Partial<Publisher>);
    push(message('later', undefined, { 'x-mqkit-deliver-at': Date.now() + 60_000 }));
    await sleep(20);
    expect(calls).toBe(1);
    expect(ch.acked).toHaveLength(0);
    expect(ch.nacked).toHaveLength(0);
    await sleep(600); // backoff: 250-500 ms
    expect(calls).toBe(2);
    expect(ch.acked).toHaveLength(1);
    expect(delivered).toHaveLength(0);
  });

  it('close() while a parking copy awaits its confirm: the original is acked before the channel closes (else it comes back besides the copy)', async () => {
    let confirm!: () => void;
    const publishAll = (items: unknown[]) => new Promise<undefined[]>((resolve) => (confirm = () => resolve(items.map(() => undefined))));
    const { sub, push, ch } = await start(false, {}, { publishAll } as unknown as Partial<Publisher>);
    push(message('later', undefined, { 'x-mqkit-deliver-at': Date.now() + 5_000 }));
    await sleep(5);
    const closing = sub.close();
    await sleep(5);
    expect(ch.closed).toBe(false); // waits for the copy's confirm
    confirm();
    await closing;
    expect(ch.acked).toHaveLength(1);
    expect(ch.closed).toBe(true);
  });

  it('close() while a delayed retry\'s copy awaits its confirm: the original is acked before the channel closes', async () => {
    let confirm!: () => void;
    const publishAll = (items: unknown[]) => new Promise<undefined[]>((resolve) => (confirm = () => resolve(items.map(() => undefined))));
    const { sub, push, ch, delivered } = await start(false, {}, { publishAll } as unknown as Partial<Publisher>);
    push(message('retry-me', undefined));
    const nacked = delivered[0]!.nack(5_000);
    await sleep(5);
    const closing = sub.close();
    await sleep(5);
    expect(ch.closed).toBe(false);
    confirm();
    await nacked;
    await closing;
    expect(ch.acked).toHaveLength(1);
    expect(ch.nacked).toHaveLength(0);
  });

  it('a delayed publish that fell due while its parking copy was refused is handed to core, not acked away', async () => {
    const publishAll = async (items: unknown[]) => items.map(() => new MqError('CONNECTION', 'confirm channel lost'));
    const { delivered, push, ch } = await start(false, {}, { publishAll } as unknown as Partial<Publisher>);
    push(message('soon', undefined, { 'x-mqkit-deliver-at': Date.now() + 100 }));
    await sleep(20);
    expect(delivered).toHaveLength(0);
    await sleep(600); // backoff 250-500 ms: by then it is due
    expect(delivered.map((d) => d.envelope.id)).toEqual(['soon']);
    expect(ch.acked).toHaveLength(0);
    await delivered[0]!.ack();
    expect(ch.acked).toHaveLength(1);
  });

  it('computes attempt from the quorum delivery count and the attempts carried over a delayed retry', async () => {
    const { delivered, push } = await start(false);
    push(message('a', undefined));
    push(message('b', undefined, { 'x-delivery-count': 2 }));
    push(message('c', undefined, { 'x-delivery-count': 1, 'x-death': [{ queue: 't.g~retry~1000', reason: 'expired', count: 1 }] }, 3));
    expect(delivered.map((d) => [d.envelope.id, d.attempt])).toEqual([
      ['a', 1],
      ['b', 3],
      ['c', 5],
    ]);
  });

  it('ordered: hands over one message per key at a time; the next goes after the ack', async () => {
    const { delivered, push, ch } = await start(true);
    push(message('k1-a', 'k1'));
    push(message('k1-b', 'k1'));
    push(message('k2-a', 'k2'));
    expect(delivered.map((d) => d.envelope.id)).toEqual(['k1-a', 'k2-a']);
    await delivered[0]!.ack();
    expect(delivered.map((d) => d.envelope.id)).toEqual(['k1-a', 'k2-a', 'k1-b']);
    expect(ch.acked).toHaveLength(1);
  });

  it('ordered: a nack keeps the message unacked for the delay, then requeues it on the broker (which counts it); its redelivery goes before later ones of its key', async () => {
    const { delivered, push, ch } = await start(true);
    push(message('first', 'k'));
    push(message('second', 'k'));
    await delivered[0]!.nack(30);
    expect(delivered).toHaveLength(1);
    expect(ch.nacked).toEqual([]);
    await sleep(60);
    // The attempt lives in the broker's x-delivery-count, not in this process (lost on a close).
    expect(ch.nacked).toEqual([{ tag: Number(delivered[0]!.meta!['delivery-tag']), requeue: true }]);
    expect(delivered).toHaveLength(1);
    push(message('other', 'k2'));
    push(message('first', 'k', { 'x-delivery-count': 1 }));
    expect(delivered.map((d) => [d.envelope.id, d.attempt])).toEqual([
      ['first', 1],
      ['other', 1],
      ['first', 2],
    ]);
    await delivered[2]!.ack();
    expect(delivered[3]!.envelope.id).toBe('second');
  });

  it('ordered: close() requeues the held messages key by key in order (a requeued retry first), not in delivery-tag order', async () => {
    const { sub, delivered, push, ch } = await start(true);
    push(message('first', 'k'));
    push(message('second', 'k'));
    await delivered[0]!.nack(0);
    await sleep(10);
    const back = message('first', 'k', { 'x-delivery-count': 1 });
    push(back);
    expect(delivered.map((d) => [d.envelope.id, d.attempt])).toEqual([
      ['first', 1],
      ['first', 2],
    ]);
    const secondTag = Number(delivered[0]!.meta!['delivery-tag']) + 1;
    await sub.close(); // 'first' (attempt 2) abandoned by core, 'second' waiting behind it
    expect(ch.nacked.slice(1)).toEqual([
      { tag: back.fields.deliveryTag, requeue: true },
      { tag: secondTag, requeue: true },
    ]);
    expect(ch.closed).toBe(true);
  });

  it('ordered: when messages stuck behind a requeued retry would fill the prefetch, later arrivals of its key go back to the broker (in order) so the retry can return', async () => {
    // After a failover RabbitMQ may hold returned messages of the key ahead of the requeued one.
    const { delivered, push, ch } = await start(true, { maxInFlight: 2 });
    push(message('first', 'k'));
    push(message('second', 'k'));
    await delivered[0]!.nack(0);
    await sleep(10);
    const third = message('third', 'k', { 'x-delivery-count': 1 });
    const fourth = message('fourth', 'k', { 'x-delivery-count': 1 });
    push(third); // would take the last slot: 'first' could never come back
    push(fourth); // a slot is free again, but it must stay behind 'third'
    expect(ch.nacked.slice(1)).toEqual([
      { tag: third.fields.deliveryTag, requeue: true },
      { tag: fourth.fields.deliveryTag, requeue: true },
    ]);
    push(message('first', 'k', { 'x-delivery-count': 1 }));
    expect(delivered.map((d) => [d.envelope.id, d.attempt])).toEqual([
      ['first', 1],
      ['first', 2],
    ]);
    await delivered[1]!.ack();
    expect(delivered[2]!.envelope.id).toBe('second');
    push(message('third', 'k', { 'x-delivery-count': 2 })); // held behind 'second' again, as usual
    expect(ch.nacked).toHaveLength(3);
  });

  it('unordered nack without delay requeues on the broker', async () => {
    const { delivered, push, ch } = await start(false);
    push(message('a', undefined));
    await delivered[0]!.nack(0);
    expect(ch.nacked).toEqual([{ tag: Number(delivered[0]!.meta!['delivery-tag']), requeue: true }]);
  });

  it('acks finished in one tick leave as one multiple ack; above a gap they go singly, at once', async () => {
    const { delivered, push, ch } = await start(false);
    for (const id of ['a', 'b', 'c', 'd']) push(message(id, undefined));
    const tags = delivered.map((d) => Number(d.meta!['delivery-tag']));
    await Promise.all([delivered[0]!.ack(), delivered[1]!.ack()]);
    expect(ch.ackFrames).toEqual([[tags[1], true]]);
    await delivered[3]!.ack(); // c still running: d must not be covered by a multiple ack
    expect(ch.ackFrames.slice(1)).toEqual([[tags[3], false]]);
    await delivered[2]!.nack(0);
    expect(ch.nacked).toEqual([{ tag: tags[2], requeue: true }]);
    push(message('e', undefined));
    await delivered[4]!.ack(); // every earlier tag is settled (c by its nack): multiple again
    expect(ch.ackFrames.slice(2)).toEqual([[Number(delivered[4]!.meta!['delivery-tag']), true]]);
  });

  it('close() sends the acks already handed over before it closes the channel', async () => {
    const { sub, delivered, push, ch } = await start(false);
    push(message('a', undefined));
    const acked = delivered[0]!.ack();
    await sub.close();
    await acked;
    expect(ch.acked).toEqual([Number(delivered[0]!.meta!['delivery-tag'])]);
    expect(ch.closed).toBe(true);
  });

  it('pause parks new deliveries; resume hands them over', async () => {
    const { sub, delivered, push } = await start(false);
    sub.pause();
    push(message('a', undefined));
    expect(delivered).toHaveLength(0);
    sub.resume();
    expect(delivered).toHaveLength(1);
  });

  it('settles after close reject CLOSED; after a lost connection CONNECTION, and nothing reaches the new channel', async () => {
    const { sub, delivered, push, users, ch } = await start(false);
    push(message('a', undefined));
    push(message('b', undefined));
    users[0]!.onLinkLost(new MqError('CONNECTION', 'lost'));
    const lost = await delivered[0]!.ack().catch((e: unknown) => e);
    expect(MqError.is(lost, 'CONNECTION')).toBe(true);
    expect(ch.acked).toEqual([]);
    await sub.close();
    const closed = await delivered[1]!.ack().catch((e: unknown) => e);
    expect(MqError.is(closed, 'CLOSED')).toBe(true);
  });
});
