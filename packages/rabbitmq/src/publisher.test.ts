import { EventEmitter } from 'node:events';
import { MqError } from '@mqkit/core/driver';
import { describe, expect, it } from 'vitest';
import type { ConnectionManager } from './connection.ts';
import { Publisher, type Outgoing } from './publisher.ts';

/** Just enough of an amqplib ConfirmChannel to drive the publisher's bookkeeping. */
class FakeConfirmChannel extends EventEmitter {
  readonly sent: Array<{ exchange: string; options: { messageId?: string }; cb: (err: unknown) => void }> = [];
  full = false;
  closed = false;

  publish(exchange: string, _rk: string, _content: Buffer, options: { messageId?: string }, cb: (err: unknown) => void): boolean {
    if (this.closed) throw Object.assign(new Error('Channel closed'), { name: 'IllegalOperationError' });
    this.sent.push({ exchange, options, cb });
    return !this.full;
  }

  ack(i: number): void {
    this.sent[i]!.cb(null);
  }

  returnMessage(i: number): void {
    const m = this.sent[i]!;
    this.emit('return', { fields: { exchange: m.exchange, replyCode: 312, replyText: 'NO_ROUTE' }, properties: { messageId: m.options.messageId } });
  }

  /** What amqplib does when the server closes the channel: 'error', then every pending callback fails, then 'close'. */
  serverClose(error: Error): void {
    this.closed = true;
    this.emit('error', error);
    for (const m of this.sent) m.cb(new Error('channel closed'));
    this.emit('close');
  }
}

function setup(): { publisher: Publisher; channels: FakeConfirmChannel[] } {
  const channels: FakeConfirmChannel[] = [];
  const manager = {
    closed: false,
    link: {
      epoch: 1,
      model: {
        createConfirmChannel: async () => {
          const ch = new FakeConfirmChannel();
          channels.push(ch);
          return ch;
        },
      },
    },
  } as unknown as ConnectionManager;
  const logger = { debug() {}, info() {}, warn() {}, error() {} };
  return { publisher: new Publisher(manager, logger), channels };
}

const msg = (id: string, exchange = 'orders'): Outgoing => ({
  exchange,
  routingKey: '',
  content: Buffer.from('x'),
  options: { messageId: id, persistent: true, mandatory: true },
});

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('Publisher', () => {
  it('resolves on ack, UNROUTABLE when a return preceded the ack, pipelining all messages', async () => {
    const { publisher, channels } = setup();
    const p = publisher.publishAll([msg('a'), msg('b'), msg('c')], 5_000);
    await tick();
    const ch = channels[0]!;
    expect(ch.sent).toHaveLength(3); // all published before any confirm
    ch.returnMessage(1);
    ch.ack(0);
    ch.ack(1);
    ch.ack(2);
    const [a, b, c] = await p;
    expect(a).toBeUndefined();
    expect(b).toBeInstanceOf(MqError);
    expect(b!.code).toBe('UNROUTABLE');
    expect(b!.retryable).toBe(false);
    expect(c).toBeUndefined();
  });

  it('matches a return to the oldest pending publish of that id and exchange', async () => {
    const { publisher, channels } = setup();
    const p = publisher.publishAll([msg('same', 'x1'), msg('same', 'x2'), msg('same', 'x2')], 5_000);
    await tick();
    const ch = channels[0]!;
    ch.returnMessage(1);
    ch.sent.forEach((_, i) => ch.ack(i));
    const results = await p;
    expect(results.map((r) => r?.code)).toEqual([undefined, 'UNROUTABLE', undefined]);
  });

  it('confirms out of publish order: a later return still finds its (oldest pending) publish; settled() waits for the last', async () => {
    const { publisher, channels } = setup();
    const p = publisher.publishAll([msg('a'), msg('dup'), msg('dup'), msg('d')], 5_000);
    await tick();
    const ch = channels[0]!;
    ch.ack(1); // the first 'dup' is confirmed before the head ('a')
    ch.ack(3);
    ch.returnMessage(2); // must match the second 'dup', the only one still pending
    let idle = false;
    const settled = publisher.settled(5_000).then(() => (idle = true));
    ch.ack(0);
    await tick();
    expect(idle).toBe(false);
    ch.ack(2);
    const results = await p;
    await settled;
    expect(results.map((r) => r?.code)).toEqual([undefined, undefined, 'UNROUTABLE', undefined]);
  });

  it('a nack is NOT_CONFIRMED (retryable); a lost channel is CONNECTION (retryable)', async () => {
    const { publisher, channels } = setup();
    const p = publisher.publishAll([msg('a'), msg('b')], 5_000);
    await tick();
    const ch = channels[0]!;
    ch.sent[0]!.cb(new Error('message nacked'));
    ch.serverClose(Object.assign(new Error('Connection closed: 320 (CONNECTION-FORCED)'), { code: 320 }));
    const [a, b] = await p;
    expect(a!.code).toBe('NOT_CONFIRMED');
    expect(a!.retryable).toBe(true);
    expect(b!.code).toBe('CONNECTION');
    expect(b!.retryable).toBe(true);
  });

  it('a 404 naming the exchange fails its messages NOT_FOUND, others CONNECTION; the next publish opens a new channel', async () => {
    const { publisher, channels } = setup();
    const p = publisher.publishAll([msg('a', 'missing'), msg('b', 'orders')], 5_000);
    await tick();
    channels[0]!.serverClose(Object.assign(new Error("Channel closed by server: 404 (NOT-FOUND) with message \"NOT_FOUND - no exchange 'missing' in vhost '/'\""), { code: 404 }));
    const [a, b] = await p;
    expect(a!.code).toBe('NOT_FOUND');
    expect(b!.code).toBe('CONNECTION');
    const again = publisher.publishAll([msg('c')], 5_000);
    await tick();
    expect(channels).toHaveLength(2);
    channels[1]!.ack(0);
    expect(await again).toEqual([undefined]);
  });

  it('waits for drain after publish() returned false', async () => {
    const { publisher, channels } = setup();
    const first = publisher.publishAll([msg('warm')], 5_000);
    await tick();
    const ch = channels[0]!;
    ch.ack(0);
    await first;
    ch.full = true;
    const p = publisher.publishAll([msg('a'), msg('b')], 5_000);
    await tick();
    expect(ch.sent).toHaveLength(2); // warm + a; b waits for drain
    ch.full = false;
    ch.emit('drain');
    await tick();
    expect(ch.sent).toHaveLength(3);
    ch.ack(1);
    ch.ack(2);
    expect(await p).toEqual([undefined, undefined]);
  });

  it('a confirm that never comes fails TIMEOUT (retryable) instead of hanging', async () => {
    const { publisher } = setup();
    const [a] = await publisher.publishAll([msg('a')], 100);
    expect(a!.code).toBe('TIMEOUT');
    expect(a!.retryable).toBe(true);
  });
});
