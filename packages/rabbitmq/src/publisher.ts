/**
 * Reliable publishing over one confirm channel: persistent, `mandatory` messages, pipelined
 * (never awaited one by one), with `publish() === false` honoured by waiting for `drain`.
 *
 * RabbitMQ answers an unroutable mandatory message with `basic.return` and then *acks* it, so a
 * confirm alone is not success: returns are matched to the oldest pending publish with the same
 * message id and exchange, and that publish then fails UNROUTABLE when its ack arrives.
 */
import type { ConfirmChannel, Message, Options } from 'amqplib';
import { MqError, type Logger } from '@mqkit/core/driver';
import { classifyError, replyCode, REPLY } from './errors.ts';
import type { ConnectionManager, Link, LinkUser } from './connection.ts';

/** One message to publish. */
export interface Outgoing {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: Options.Publish;
}

interface Pending {
  readonly exchange: string;
  readonly messageId: string;
  returned: { code: number; text: string } | undefined;
}

interface PublishChannel {
  readonly channel: ConfirmChannel;
  readonly epoch: number;
  /**
   * Publishes awaiting their confirm, oldest first. A Set: O(1) add and delete on the hot path;
   * only a `basic.return` (rare) scans it.
   */
  readonly pending: Set<Pending>;
  /** Why the server closed this channel, if it did. */
  closeError: unknown;
  closed: boolean;
  /** Set while the channel's buffer is full. */
  drained: Promise<void> | undefined;
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
    const results: Array<MqError | undefined> = new Array(items.length);
    const settled: boolean[] = new Array(items.length).fill(false);
    let remaining = items.length;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const settle = (i: number, error: MqError | undefined): void => {
      if (settled[i]) return;
      settled[i] = true;
      results[i] = error;
      remaining -= 1;
      if (remaining === 0) finish();
    };
    // One timer per batch, not per message: confirms are cheap to wait for, timers are not.
    const timer = setTimeout(() => {
      const error = new MqError('TIMEOUT', `RabbitMQ did not confirm within ${confirmTimeoutMs} ms (connection blocked or overloaded?); outcome unknown`);
      for (let i = 0; i < items.length; i += 1) settle(i, error);
    }, confirmTimeoutMs);
    let pc: PublishChannel | undefined = this.#current && !this.#current.closed ? this.#current : undefined;
    for (let i = 0; i < items.length && remaining > 0; i += 1) {
      const item = items[i]!;
      try {
        // Awaits only when there is something to wait for: pipelining stays synchronous.
        if (pc?.drained) await Promise.race([pc.drained, finished]);
        if (settled[i]) continue; // timed out while waiting for drain
        if (!pc || pc.closed) pc = await this.#channel();
      } catch (err) {
        pc = undefined;
        settle(i, classifyError(err, `publish to "${item.exchange}"`));
        continue;
      }
      this.#publishOne(pc, item, (error) => settle(i, error));
    }
    if (items.length === 0) finish();
    await finished;
    clearTimeout(timer);
    return results;
  }

  #publishOne(pc: PublishChannel, item: Outgoing, done: (error: MqError | undefined) => void): void {
    const messageId = item.options.messageId ?? '';
    const entry: Pending = { exchange: item.exchange, messageId, returned: undefined };
    pc.pending.add(entry);
    this.#inFlight += 1;
    const complete = (error: MqError | undefined): void => {
      pc.pending.delete(entry);
      this.#inFlight -= 1;
      if (this.#inFlight === 0) this.#idle.splice(0).forEach((w) => w());
      done(error);
    };
    let ok: boolean;
    try {
      ok = pc.channel.publish(item.exchange, item.routingKey, item.content, item.options, (err: unknown) => {
        if (err) {
          complete(this.#confirmError(pc, item.exchange, err));
        } else if (entry.returned) {
          complete(
            new MqError('UNROUTABLE', `no queue is bound to exchange "${item.exchange}" (${entry.returned.code} ${entry.returned.text}); subscribe a group first or declare its queue`, {
              details: { exchange: item.exchange, routingKey: item.routingKey, replyCode: entry.returned.code },
            }),
          );
        } else {
          complete(undefined);
        }
      });
    } catch (err) {
      complete(classifyError(err, `publish to "${item.exchange}"`));
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

  #confirmError(pc: PublishChannel, exchange: string, err: unknown): MqError {
    if (err instanceof Error && /nacked/i.test(err.message)) {
      return new MqError('NOT_CONFIRMED', `RabbitMQ nacked the message to "${exchange}" (not stored)`, { cause: err });
    }
    // The channel closed under this publish. A server close naming this exchange (404 no
    // exchange) is this message's fault; anything else is a lost channel: retry.
    const cause = pc.closeError;
    if (cause !== undefined && replyCode(cause) === REPLY.NOT_FOUND && cause instanceof Error && cause.message.includes(`'${exchange}'`)) {
      return classifyError(cause, `publish to "${exchange}"`);
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
    const pc: PublishChannel = { channel, epoch: link.epoch, pending: new Set(), closeError: undefined, closed: false, drained: undefined };
    channel.on('error', (err: unknown) => {
      pc.closeError = err;
      this.#logger.warn({ err: classifyError(err, 'publish channel') }, 'rabbitmq closed the publish channel; it is reopened on the next publish');
    });
    channel.on('close', () => {
      pc.closed = true;
      if (this.#current === pc) this.#current = undefined;
    });
    channel.on('return', (message: Message) => {
      const id = message.properties.messageId ?? '';
      let entry: Pending | undefined;
      for (const p of pc.pending) {
        if (p.returned === undefined && p.messageId === id && p.exchange === message.fields.exchange) {
          entry = p;
          break;
        }
      }
      const fields = message.fields as unknown as { replyCode?: number; replyText?: string };
      if (entry) entry.returned = { code: fields.replyCode ?? REPLY.NO_ROUTE, text: fields.replyText ?? 'NO_ROUTE' };
    });
    this.#current = pc;
    return pc;
  }

  /** Resolves once no publish awaits its confirm (or after `timeoutMs`). */
  async settled(timeoutMs: number): Promise<void> {
    if (this.#inFlight === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((r) => this.#idle.push(r)),
      new Promise<void>((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }
}
