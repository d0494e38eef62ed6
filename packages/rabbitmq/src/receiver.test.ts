import { EventEmitter } from 'node:events';
import { AttemptLedger, MqError, PullSubscription, silentLogger, type DriverDelivery, type SubscriptionSpec } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import type { ConnectionManager, Link, LinkUser } from './connection.ts';
import type { Publisher } from './publisher.ts';
import { RabbitReceiver, type RabbitMessage } from './receiver.ts';
import type { Topology } from './topology.ts';
import { toPublishOptions } from './wire.ts';

/** Just enough of an amqplib Channel to drive the receiver's bookkeeping. */
class FakeChannel extends EventEmitter {
  onMessage: ((m: unknown) => void) | undefined;
  readonly acked: number[] = [];
  /** Every ack frame as sent: [tag, multiple]. */
  readonly ackFrames: Array<[number, boolean]> = [];
  readonly nacked: Array<{ tag: number; requeue: boolean }> = [];
  prefetched: number | undefined;
  closed = false;
  async prefetch(n: number): Promise<void> {
    this.prefetched = n;
  }
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

type Sent = Array<{ exchange: string; routingKey: string; options: { expiration?: string | number; headers?: Record<string, unknown> } }>;

/** A receiver on fake channels, run by core's PullSubscription (as the client would). */
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
  const delivered: DriverDelivery[] = [];
  const errors: MqError[] = [];
  const spec: SubscriptionSpec = { topic: 't', group: 'g', maxInFlight: 10, ordered, maxAttempts: 5, deadLetterTopic: 't-dlq', options: {}, ...overrides };
  const receiver = new RabbitReceiver({ manager, topology, publisher: publisher as Publisher, logger: silentLogger, safeUrl: 'amqp://guest@h:5672/' }, spec, {});
  await receiver.start();
  const sub = new PullSubscription<RabbitMessage>(receiver, {
    spec,
    sink: { deliver: (d) => void delivered.push(d), error: (e) => void errors.push(e) },
    logger: silentLogger,
    ledger: new AttemptLedger(),
  }).start();
  const ch = channels[0]!;
  return { sub, receiver, ch, channels, delivered, errors, users, push: (m: unknown) => ch.onMessage!(m) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Lets core take what arrived (its receive loop and settle batches run on the event loop). */
const settle = () => sleep(5);
const tagOf = (d: DriverDelivery) => Number(d.meta!['delivery-tag']);

describe('RabbitReceiver', () => {
  it('prefetch NaN or negative is CONFIG and never reaches channel.prefetch(); the prefetch is maxInFlight', async () => {
    for (const maxInFlight of [Number.NaN, -100]) {
      const err = await start(false, { maxInFlight }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(MqError.is(err) && err.code).toBe('CONFIG');
    }
    const { ch, receiver } = await start(false, { maxInFlight: 7 });
    expect(ch.prefetched).toBe(7);
    expect(receiver.scope).toBe('rabbitmq:amqp://guest@h:5672/\u0000t.g');
  });

  it('receive() waiting on an empty buffer resolves [] promptly on abort', async () => {
    const r = new RabbitReceiver(
      {
        manager: { closed: false, link: undefined, waitForLink: async () => undefined } as unknown as ConnectionManager,
        topology: {} as Topology,
        publisher: {} as Publisher,
        logger: silentLogger,
        safeUrl: 'amqp://h/',
      },
      { topic: 't', group: 'g', maxInFlight: 3, ordered: false, maxAttempts: 5, deadLetterTopic: 't-dlq', options: {} },
      {},
    );
    const abort = new AbortController();
    const pending = r.receive(2, abort.signal);
    abort.abort();
    expect(await pending).toEqual([]);
  });

  it('a delayed publish not due yet is parked in the group\'s delay queue (not handed to core), then acked', async () => {
    const sent: Sent = [];
    const publishAll = async (items: Sent) => {
      sent.push(...items);
      return items.map(() => undefined);
    };
    const { delivered, push, ch } = await start(false, {}, { publishAll } as unknown as Partial<Publisher>);
    push(message('later', undefined, { 'x-mqkit-deliver-at': Date.now() + 5_000 }));
    push(message('forged', undefined, { 'x-mqkit-deliver-at': Date.now() + 30 * 24 * 3600_000 }));
    await settle();
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
      return items.map(() => (calls === 1 ? new MqError('CONNECTION', 'refused') : undefined));
    };
    const { delivered, push, ch } = await start(false, {}, { publishAll } as unknown as Partial<Publisher>);
    push(message('later', undefined, { 'x-mqkit-deliver-at': Date.now() + 60_000 }));
    await settle();
    expect(calls).toBe(1);
    expect(ch.acked).toEqual([]);
    await sleep(1_200);
    expect(calls).toBe(2);
    expect(ch.acked).toHaveLength(1);
    expect(delivered).toHaveLength(0);
  });

  it('close() while a parking copy awaits its confirm: the original is acked before the channel closes', async () => {
    let confirm!: () => void;
    const publishAll = (items: unknown[]) => new Promise((r) => (confirm = () => r(items.map(() => undefined))));
    const { sub, push, ch } = await start(false, {}, { publishAll } as unknown as Partial<Publisher>);
    push(message('later', undefined, { 'x-mqkit-deliver-at': Date.now() + 5_000 }));
    await settle();
    const closing = sub.close();
    await settle();
    confirm();
    await closing;
    expect(ch.acked).toHaveLength(1);
    expect(ch.closed).toBe(true);
  });

  it('an unordered nack with a delay: a copy to the bucket\'s delay queue carries the attempts so far; the original is acked after the confirm', async () => {
    const sent: Sent = [];
    const publishAll = async (items: Sent) => {
      sent.push(...items);
      return items.map(() => undefined);
    };
    const { delivered, push, ch } = await start(false, {}, { publishAll } as unknown as Partial<Publisher>);
    push(message('a', undefined));
    await settle();
    await delivered[0]!.nack(700);
    expect(sent.map((s) => [s.routingKey, s.options.expiration, s.options.headers?.['x-mqkit-prior-attempts']])).toEqual([['t.g~retry~700', '700', 1]]);
    expect(ch.acked).toEqual([tagOf(delivered[0]!)]);
    expect(ch.nacked).toEqual([]);
  });

  it('a delayed retry whose copy is refused is requeued at once (retried early rather than lost)', async () => {
    const publishAll = async (items: unknown[]) => items.map(() => new MqError('NOT_CONFIRMED', 'nacked'));
    const { delivered, push, ch } = await start(false, {}, { publishAll } as unknown as Partial<Publisher>);
    push(message('a', undefined));
    await settle();
    await delivered[0]!.nack(700);
    expect(ch.nacked).toEqual([{ tag: tagOf(delivered[0]!), requeue: true }]);
    expect(ch.acked).toEqual([]);
  });

  it('deliveryCount: the quorum delivery count plus the attempts carried over a delayed retry; a forged count on a first delivery is ignored', async () => {
    const { delivered, push } = await start(false);
    push(message('a', undefined));
    push(message('b', undefined, { 'x-delivery-count': 2 }));
    push(message('c', undefined, { 'x-delivery-count': 1, 'x-death': [{ queue: 't.g~retry~1000', reason: 'expired', count: 1 }] }, 3));
    const forged = message('d', undefined, { 'x-mqkit-prior-attempts': 100, 'x-delivery-count': 100 });
    forged.fields.redelivered = false;
    push(forged);
    await settle();
    expect(delivered.map((d) => [d.envelope.id, d.attempt])).toEqual([
      ['a', 1],
      ['b', 3],
      ['c', 5],
      ['d', 1],
    ]);
  });

  it('a second message with the id of one still unacked on the channel is another message: both reach core, each settles its own tag', async () => {
    const { delivered, push, ch } = await start(false);
    push(message('same', undefined));
    push(message('same', undefined));
    await settle();
    expect(delivered.map((d) => d.envelope.id)).toEqual(['same', 'same']);
    await Promise.all(delivered.map((d) => d.ack()));
    expect(ch.ackFrames).toEqual([[tagOf(delivered[1]!), true]]); // covers both tags
    expect(new Set(delivered.map(tagOf)).size).toBe(2);
  });

  it('ordered: a nack keeps the message unacked for the delay, then requeues it (counted by the broker); later ones of its key wait for its return', async () => {
    const { delivered, push, ch } = await start(true);
    push(message('first', 'k'));
    push(message('second', 'k'));
    await settle();
    expect(delivered.map((d) => d.envelope.id)).toEqual(['first']); // core's lane holds 'second'
    await delivered[0]!.nack(30);
    await settle();
    expect(ch.nacked).toEqual([]); // 'second' was given back by core: it waits in the receiver
    push(message('third', 'k')); // published meanwhile: waits too
    await sleep(60);
    expect(ch.nacked).toEqual([{ tag: tagOf(delivered[0]!), requeue: true }]);
    push(message('other', 'k2'));
    await settle();
    expect(delivered.map((d) => d.envelope.id)).toEqual(['first', 'other']);
    push(message('first', 'k', { 'x-delivery-count': 1 }));
    await settle();
    expect(delivered.map((d) => [d.envelope.id, d.attempt])).toEqual([
      ['first', 1],
      ['other', 1],
      ['first', 2],
    ]);
    await delivered[2]!.ack();
    await settle();
    expect(delivered[3]!.envelope.id).toBe('second');
    expect(delivered[3]!.attempt).toBe(1); // held back, never an attempt
    await delivered[3]!.ack();
    await settle();
    expect(delivered[4]!.envelope.id).toBe('third');
    expect(ch.nacked).toHaveLength(1);
  });

  it('ordered: close() requeues key by key in order (a requeued retry first), not in delivery-tag order', async () => {
    const { sub, delivered, push, ch } = await start(true);
    push(message('first', 'k'));
    push(message('second', 'k'));
    await settle();
    await delivered[0]!.nack(0);
    await settle();
    const back = message('first', 'k', { 'x-delivery-count': 1 });
    push(back);
    await settle();
    expect(delivered.map((d) => [d.envelope.id, d.attempt])).toEqual([
      ['first', 1],
      ['first', 2],
    ]);
    const secondTag = tagOf(delivered[0]!) + 1;
    const closing = sub.close(); // 'first' (attempt 2) abandoned by core, 'second' waiting behind it
    await closing;
    expect(ch.nacked.slice(1)).toEqual([
      { tag: back.fields.deliveryTag, requeue: true },
      { tag: secondTag, requeue: true },
    ]);
    expect(ch.closed).toBe(true);
  });

  it('ordered: when messages waiting for a requeued retry would fill the prefetch, later arrivals of its key go back to the broker (in order) so the retry can return', async () => {
    const { delivered, push, ch } = await start(true, { maxInFlight: 2 });
    push(message('first', 'k'));
    push(message('second', 'k'));
    await settle();
    await delivered[0]!.nack(0);
    await settle();
    const third = message('third', 'k', { 'x-delivery-count': 1 });
    const fourth = message('fourth', 'k', { 'x-delivery-count': 1 });
    push(third); // would take the last slot: 'first' could never come back
    push(fourth); // it must stay behind 'third'
    expect(ch.nacked.slice(1)).toEqual([
      { tag: third.fields.deliveryTag, requeue: true },
      { tag: fourth.fields.deliveryTag, requeue: true },
    ]);
    push(message('first', 'k', { 'x-delivery-count': 1 }));
    await settle();
    expect(delivered.map((d) => [d.envelope.id, d.attempt])).toEqual([
      ['first', 1],
      ['first', 2],
    ]);
    await delivered[1]!.ack();
    await settle();
    expect(delivered[2]!.envelope.id).toBe('second');
  });

  it('unordered nack without delay requeues on the broker', async () => {
    const { delivered, push, ch } = await start(false);
    push(message('a', undefined));
    await settle();
    await delivered[0]!.nack(0);
    expect(ch.nacked).toEqual([{ tag: tagOf(delivered[0]!), requeue: true }]);
  });

  it('acks of one turn leave as one multiple ack; above a gap they go singly', async () => {
    const { delivered, push, ch } = await start(false);
    for (const id of ['a', 'b', 'c', 'd']) push(message(id, undefined));
    await settle();
    const tags = delivered.map(tagOf);
    await Promise.all([delivered[0]!.ack(), delivered[1]!.ack()]);
    expect(ch.ackFrames).toEqual([[tags[1], true]]);
    await delivered[3]!.ack(); // c still running: d must not be covered by a multiple ack
    expect(ch.ackFrames.slice(1)).toEqual([[tags[3], false]]);
    await delivered[2]!.nack(0);
    expect(ch.nacked).toEqual([{ tag: tags[2], requeue: true }]);
    push(message('e', undefined));
    await settle();
    await delivered[4]!.ack(); // every earlier tag is settled (c by its nack): multiple again
    expect(ch.ackFrames.slice(2)).toEqual([[tagOf(delivered[4]!), true]]);
  });

  it('settles after a lost connection reject CONNECTION, the consumer is rebuilt on the new link; after close CLOSED', async () => {
    const { sub, delivered, push, users, ch, channels } = await start(false);
    push(message('a', undefined));
    push(message('b', undefined));
    await settle();
    users[0]!.onLinkLost(new MqError('CONNECTION', 'lost'));
    const lost = await delivered[0]!.ack().catch((e: unknown) => e);
    expect(MqError.is(lost, 'CONNECTION')).toBe(true);
    expect(ch.acked).toEqual([]);
    await users[0]!.onLink({ epoch: 2, model: { createChannel: async () => (channels.push(new FakeChannel()), channels.at(-1)) } as unknown as Link['model'] });
    await settle();
    expect(channels).toHaveLength(2);
    // The broker redelivers 'b' on the new channel while its first handler still runs: RabbitMQ
    // names no message, so this is a delivery of its own (attempt 2); the old one refuses to settle.
    const again = message('b', undefined, { 'x-delivery-count': 1 });
    channels[1]!.onMessage!(again);
    await settle();
    expect(delivered).toHaveLength(3);
    expect(MqError.is(await delivered[1]!.ack().catch((e: unknown) => e), 'CONNECTION')).toBe(true);
    await delivered[2]!.ack();
    expect(channels[1]!.acked).toEqual([again.fields.deliveryTag]);
    push(message('c', undefined)); // a straggler of the old channel: ignored (the broker has it back)
    await settle();
    expect(delivered).toHaveLength(3);
    await sub.close();
    expect(channels[1]!.closed).toBe(true);
  });

  it('a consumer cancelled by the broker is reported through receive() and re-established', async () => {
    const { errors, ch, channels } = await start(false);
    ch.onMessage!(null);
    await sleep(50);
    expect(errors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    expect(channels).toHaveLength(2);
  });
});
