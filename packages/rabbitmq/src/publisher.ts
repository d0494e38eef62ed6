/**
 * Reliable publishing over one confirm channel: persistent, `mandatory` messages, pipelined
 * (never awaited one by one), with `publish() === false` honoured by waiting for `drain`.
 *
 * RabbitMQ answers an unroutable mandatory message with `basic.return` and then *acks* it, so a
 * confirm alone is not success: returns are matched to the oldest pending publish with the same
 * message id and exchange, and that publish then fails UNROUTABLE when its ack arrives.
 */
import type { ConfirmChannel, Message, Options } from 'amqplib';
import { missingTopologyError, MqError, settledWithin, type Logger } from '@mqkit/core/driver';
import { classifyError, replyCode, REPLY } from './errors.ts';
import type { ConnectionManager, Link, LinkUser } from './connection.ts';

/** One message to publish. */
export interface Outgoing {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: Options.Publish;
}

/** The outcomes of one {@link Publisher.publishAll} call. */
interface Batch {
  readonly results: Array<MqError | undefined>;
  /** 1 once the item at that index has its outcome. */
  readonly settled: Uint8Array;
  remaining: number;
  readonly finish: () => void;
}

/** One publish awaiting its confirm. */
interface Pending {
  readonly item: Outgoing;
  readonly batch: Batch;
  readonly index: number;
  readonly pc: PublishChannel;
  returned: { code: number; text: string } | undefined;
  done: boolean;
}

/**
 * Publishes awaiting their confirm, oldest first: an array with a moving head. Confirms arrive
 * (almost always) in publish order, so completing one usually just advances the head; no Set or
 * Map entry per message. Only a `basic.return` (rare) scans it.
 */
class PendingQueue {
  #items: Array<Pending | undefined> = [];
  #head = 0;

  push(entry: Pending): void {
    this.#items.push(entry);
  }

  /** Call after `entry.done` was set. */
  completed(entry: Pending): void {
    const items = this.#items;
    if (items[this.#head] !== entry) return; // out of order: stays until the head passes it
    let head = this.#head;
    while (head < items.length && items[head]!.done) items[head++] = undefined;
    if (head === items.length) {
      items.length = 0;
      head = 0;
    } else if (head > 1024 && head * 2 > items.length) {
      this.#items = items.slice(head);
      head = 0;
    }
    this.#head = head;
  }

  /** The oldest pending publish of `messageId` to `exchange` not yet marked returned. */
  findReturned(messageId: string, exchange: string): Pending | undefined {
    const items = this.#items;
    for (let i = this.#head; i < items.length; i += 1) {
      const p = items[i]!;
      if (!p.done && p.returned === undefined && (p.item.options.messageId ?? '') === messageId && p.item.exchange === exchange) return p;
    }
    return undefined;
  }
}

interface PublishChannel {
  readonly channel: ConfirmChannel;
  readonly epoch: number;
  readonly pending: PendingQueue;
  /** Why the server closed this channel, if it did. */
  closeError: unknown;
  closed: boolean;
  /** Set while the channel's buffer is full. */
  drained: Promise<void> | undefined;
}

const identity = (item: Outgoing): Outgoing => item;

function settle(batch: Batch, index: number, error: MqError | undefined): void {
  if (batch.settled[index] === 1) return;
  batch.settled[index] = 1;
  batch.results[index] = error;
  batch.remaining -= 1;
  if (batch.remaining === 0) batch.finish();
}

export class Publisher implements LinkUser {
  readonly #manager: ConnectionManager;
  readonly #logger: Logger;
  #current: PublishChannel | undefined;
  #opening: Promise<PublishChannel> | undefined;
  #inFlight = 0;
  readonly #idle: Array<() => void> = [];

  constructor(manager: ConnectionManager, logger: Logger) {
    this.#manager = manager;
    this.#logger = logger;
  }

  onLink(_link: Link): void {
    // Opened lazily on the next publish.
  }

  onLinkLost(): void {
    // amqplib fails every unconfirmed callback of the dead channel with "channel closed".
    this.#current = undefined;
    this.#opening = undefined;
  }

  /**
   * Publishes in order; resolves per message with undefined (confirmed) or the error. A message
   * neither confirmed nor failed within `confirmTimeoutMs` (e.g. the broker blocked the
   * connection on a resource alarm) resolves TIMEOUT: outcome unknown, retryable.
   */
  async publishAll(items: readonly Outgoing[], confirmTimeoutMs: number): Promise<Array<MqError | undefined>> {
    return this.publishEach(items, identity, confirmTimeoutMs);
  }

  /**
   * {@link publishAll} that turns each source into its message only when that message is
   * published: a batch waiting for `drain` behind others has built nothing yet, so the first
   * frames reach the socket after one channel buffer's worth of work, not after every batch's.
   * A `toItem` that throws fails that message alone.
   */
  async publishEach<S>(sources: readonly S[], toItem: (source: S) => Outgoing, confirmTimeoutMs: number): Promise<Array<MqError | undefined>> {
    const count = sources.length;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const batch: Batch = { results: new Array<MqError | undefined>(count), settled: new Uint8Array(count), remaining: count, finish };
    if (count === 0) return batch.results;
    // One timer per batch, not per message: confirms are cheap to wait for, timers are not.
    const timer = setTimeout(() => {
      const error = new MqError('TIMEOUT', `RabbitMQ did not confirm within ${confirmTimeoutMs} ms (connection blocked or overloaded?); outcome unknown`);
      for (let i = 0; i < count; i += 1) settle(batch, i, error);
    }, confirmTimeoutMs);
    let pc: PublishChannel | undefined = this.#current && !this.#current.closed ? this.#current : undefined;
    for (let i = 0; i < count && batch.remaining > 0; i += 1) {
      // Awaits only when there is something to wait for: pipelining stays synchronous.
      if (pc?.drained || !pc || pc.closed) {
        try {
          if (pc?.drained) await Promise.race([pc.drained, finished]);
          if (batch.settled[i] === 1) continue; // timed out while waiting for drain
          if (!pc || pc.closed) pc = await this.#channel();
        } catch (err) {
          pc = undefined;
          settle(batch, i, classifyError(err, 'cannot publish'));
          continue;
        }
      }
      let item: Outgoing;
      try {
        item = toItem(sources[i]!);
      } catch (err) {
        settle(batch, i, MqError.is(err) ? err : new MqError('INTERNAL', `cannot build the AMQP message: ${String(err)}`, { cause: err }));
        continue;
      }
      this.#publishOne(pc, item, batch, i);
    }
    await finished;
    clearTimeout(timer);
    return batch.results;
  }

  #publishOne(pc: PublishChannel, item: Outgoing, batch: Batch, index: number): void {
    const entry: Pending = { item, batch, index, pc, returned: undefined, done: false };
    pc.pending.push(entry);
    this.#inFlight += 1;
    let ok: boolean;
    try {
      // One closure per message: amqplib identifies a confirm only by calling its callback.
      ok = pc.channel.publish(item.exchange, item.routingKey, item.content, item.options, (err: unknown) => this.#confirmed(entry, err));
    } catch (err) {
      this.#complete(entry, classifyError(err, `publish to "${item.exchange}"`));
      return;
    }
    if (!ok && !pc.drained && !pc.closed) {
      pc.drained = new Promise<void>((r) => {
        const release = (): void => {
          pc.channel.removeListener('drain', release);
          pc.channel.removeListener('close', release);
          pc.drained = undefined;
          r();
        };
        pc.channel.once('drain', release);
        pc.channel.once('close', release);
      });
    }
  }

  /** amqplib's confirm callback: null on ack, an error on nack or a closed channel. */
  #confirmed(entry: Pending, err: unknown): void {
    const { item, returned } = entry;
    if (err) {
      this.#complete(entry, this.#confirmError(entry.pc, item.exchange, err));
    } else if (returned) {
      this.#complete(
        entry,
        new MqError('UNROUTABLE', `rabbitmq: no consumer group's queue is bound to topic "${item.exchange}" (${returned.code} ${returned.text}), so nothing would keep the message: declare the topic's groups first with client.declare({ topic: '${item.exchange}', groups: [...] }), or subscribe a group`, {
          details: { exchange: item.exchange, routingKey: item.routingKey, replyCode: returned.code },
        }),
      );
    } else {
      this.#complete(entry, undefined);
    }
  }

  #complete(entry: Pending, error: MqError | undefined): void {
    if (entry.done) return;
    entry.done = true;
    entry.pc.pending.completed(entry);
    this.#inFlight -= 1;
    if (this.#inFlight === 0 && this.#idle.length > 0) this.#idle.splice(0).forEach((w) => w());
    settle(entry.batch, entry.index, error);
  }

  #confirmError(pc: PublishChannel, exchange: string, err: unknown): MqError {
    if (err instanceof Error && /nacked/i.test(err.message)) {
      return new MqError('NOT_CONFIRMED', `RabbitMQ nacked the message to "${exchange}" (not stored)`, { cause: err });
    }
    // The channel closed under this publish. A server close naming this exchange (404 no
    // exchange) is this message's fault; anything else is a lost channel: retry.
    const cause = pc.closeError;
    if (cause !== undefined && replyCode(cause) === REPLY.NOT_FOUND && cause instanceof Error && cause.message.includes(`'${exchange}'`)) {
      return missingTopologyError('rabbitmq', [{ kind: 'topic', name: exchange }], { topic: exchange, ordered: false, groups: [] }, 'or leave the rabbitmq option declare=true', cause);
    }
    return new MqError('CONNECTION', `channel closed before RabbitMQ confirmed the message to "${exchange}"; outcome unknown`, { cause: cause ?? err });
  }

  async #channel(): Promise<PublishChannel> {
    if (this.#current && !this.#current.closed) return this.#current;
    this.#opening ??= this.#open().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async #open(): Promise<PublishChannel> {
    if (this.#manager.closed) throw new MqError('CLOSED', 'rabbitmq driver is closed');
    const link = this.#manager.link;
    if (!link) throw new MqError('CONNECTION', 'rabbitmq connection is down; reconnecting');
    let channel: ConfirmChannel;
    try {
      channel = await link.model.createConfirmChannel();
    } catch (err) {
      throw classifyError(err, 'cannot open a confirm channel');
    }
    const pc: PublishChannel = { channel, epoch: link.epoch, pending: new PendingQueue(), closeError: undefined, closed: false, drained: undefined };
    channel.on('error', (err: unknown) => {
      pc.closeError = err;
      this.#logger.warn({ err: classifyError(err, 'publish channel') }, 'rabbitmq closed the publish channel; it is reopened on the next publish');
    });
    channel.on('close', () => {
      pc.closed = true;
      if (this.#current === pc) this.#current = undefined;
    });
    channel.on('return', (message: Message) => {
      const entry = pc.pending.findReturned((message.properties.messageId as string | undefined) ?? '', message.fields.exchange);
      const fields = message.fields as unknown as { replyCode?: number; replyText?: string };
      if (entry) entry.returned = { code: fields.replyCode ?? REPLY.NO_ROUTE, text: fields.replyText ?? 'NO_ROUTE' };
    });
    this.#current = pc;
    return pc;
  }

  /** Resolves once no publish awaits its confirm (or after `timeoutMs`). */
  async settled(timeoutMs: number): Promise<void> {
    if (this.#inFlight === 0) return;
    await settledWithin(new Promise<void>((r) => this.#idle.push(r)), timeoutMs);
  }
}
