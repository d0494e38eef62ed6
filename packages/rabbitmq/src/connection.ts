/**
 * One AMQP connection that heals itself. amqplib does not reconnect on its own (its opt-in
 * `recovery` only re-opens the socket, and its semantics for in-flight confirms are not ours),
 * so this class owns the loop: on an unexpected close it tells every user of the old connection
 * (in-flight publishes fail as retryable CONNECTION, deliveries of the old channels become
 * stale), reconnects with backoff until closed, and then lets each user rebuild (publisher
 * channel, topology, consumers).
 */
import amqp, { type ChannelModel } from 'amqplib';
import { backoffDelay, MqError, type Logger } from '@mqkit/core/driver';
import { classifyError } from './errors.ts';
import type { ConnectionSettings } from './options.ts';

/** A live connection, numbered so that users can tell an old one from the current one. */
export interface Link {
  readonly model: ChannelModel;
  readonly epoch: number;
}

/** Something that rebuilds its state on every new connection. */
export interface LinkUser {
  /** A new connection is up; rebuild channels, topology, consumers. */
  onLink(link: Link): Promise<void> | void;
  /** The current connection is gone (unexpectedly or by close()). */
  onLinkLost(error: MqError): void;
}

/** Opens the AMQP connection once, classifying failures. */
export async function openConnection(settings: ConnectionSettings): Promise<ChannelModel> {
  try {
    return await amqp.connect(settings.amqpUrl, settings.socketOptions);
  } catch (err) {
    throw classifyError(err, `cannot connect to RabbitMQ at ${settings.safeUrl}`);
  }
}

/** The parts of amqplib's (untyped) connection internals that {@link corkFrameWrites} touches. */
interface MuxInternals {
  stream?: { cork?: () => void; uncork?: () => void };
  muxer?: { _readIncoming?: (this: unknown) => void };
}

/**
 * Coalesces amqplib's frame writes into few socket writes without adding latency.
 *
 * amqplib queues every frame (a publish, an ack) per channel and its muxer, on the next
 * `setImmediate`, copies them to the socket one `write()` each. The socket runs with Nagle off
 * (`noDelay`, for publish latency), so each frame costs its own syscall: for 1 KiB publishes and
 * 21-byte acks that was the largest single client cost (and every extra packet costs the broker
 * too). Corking the socket for the duration of one muxer pass and uncorking at its end sends what
 * that pass wrote as one `writev`; nothing waits for a timer, so a lone publish leaves exactly as
 * soon as before. Write order, `drain` handling (the socket's `write()` still answers false at
 * its high-water mark, which pauses the muxer as before) and error paths are unchanged. If the
 * internals are not what this expects (another amqplib version), it does nothing.
 */
export function corkFrameWrites(connection: unknown): void {
  const c = connection as MuxInternals | undefined;
  const stream = c?.stream;
  const muxer = c?.muxer;
  const pass = muxer?._readIncoming;
  if (!stream || !muxer || typeof pass !== 'function' || typeof stream.cork !== 'function' || typeof stream.uncork !== 'function') return;
  const cork = stream.cork.bind(stream);
  const uncork = stream.uncork.bind(stream);
  muxer._readIncoming = function corkedPass(this: unknown): void {
    cork();
    try {
      pass.call(this);
    } finally {
      uncork();
    }
  };
}

export class ConnectionManager {
  readonly #settings: ConnectionSettings;
  readonly #logger: Logger;
  readonly #users = new Set<LinkUser>();
  #link: Link | undefined;
  #epoch = 0;
  #closed = false;
  #reconnecting: Promise<void> | undefined;
  readonly #waiters: Array<(link: Link | undefined) => void> = [];

  constructor(settings: ConnectionSettings, logger: Logger) {
    this.#settings = settings;
    this.#logger = logger;
  }

  /** The first connection; throws a classified MqError when the broker cannot be reached. */
  async start(): Promise<void> {
    const model = await openConnection(this.#settings);
    this.#adopt(model);
  }

  /** The current connection, or undefined while reconnecting. */
  get link(): Link | undefined {
    return this.#link;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Waits for a connection up to `timeoutMs`; undefined when closed or still down by then. */
  waitForLink(timeoutMs: number): Promise<Link | undefined> {
    if (this.#link || this.#closed) return Promise.resolve(this.#link);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(done);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve(undefined);
      }, timeoutMs);
      const done = (link: Link | undefined): void => {
        clearTimeout(timer);
        resolve(link);
      };
      this.#waiters.push(done);
    });
  }

  /** Registers a user; it hears about the current connection right away. */
  async attach(user: LinkUser): Promise<void> {
    this.#users.add(user);
    if (this.#link) await user.onLink(this.#link);
  }

  detach(user: LinkUser): void {
    this.#users.delete(user);
  }

  #adopt(model: ChannelModel): void {
    const link: Link = { model, epoch: ++this.#epoch };
    this.#link = link;
    model.on('error', (err: unknown) => {
      // 'close' follows; the error is logged there.
      this.#logger.debug({ err: classifyError(err, 'connection error') }, 'rabbitmq connection error');
    });
    model.on('close', (err?: unknown) => this.#lost(link, err));
    // amqplib notices a dead socket only through 'end' or 'error'; a socket closed without
    // either (destroyed locally, some network failures) would go unnoticed until the heartbeat
    // times out, leaving confirms hanging. Treat the socket's 'close' as the loss it is.
    const connection = (model as unknown as { connection?: { stream?: NodeJS.EventEmitter; onSocketError?: (err: Error) => void } }).connection;
    connection?.stream?.once('close', () => {
      if (this.#link === link && typeof connection.onSocketError === 'function') connection.onSocketError(new Error('socket closed'));
    });
    corkFrameWrites(connection);
    model.on('blocked', (reason: string) => this.#logger.warn({ reason }, 'rabbitmq blocked the connection (resource alarm); publishes wait'));
    model.on('unblocked', () => this.#logger.info({}, 'rabbitmq unblocked the connection'));
    for (const w of this.#waiters.splice(0)) w(link);
  }

  /** Tells users that `link` is gone and, unless closing, starts reconnecting. */
  #lost(link: Link, err: unknown): void {
    if (this.#link !== link) return;
    this.#link = undefined;
    const error = this.#closed
      ? new MqError('CLOSED', 'rabbitmq connection closed')
      : new MqError('CONNECTION', `rabbitmq connection lost${err instanceof Error ? `: ${err.message}` : ''}`, { cause: err });
    for (const user of this.#users) {
      try {
        user.onLinkLost(error);
      } catch (e) {
        this.#logger.error({ err: e }, 'rabbitmq link-lost handler failed');
      }
    }
    if (this.#closed) return;
    this.#logger.warn({ err: error, url: this.#settings.safeUrl }, 'rabbitmq connection lost; reconnecting');
    this.#reconnecting ??= this.#reconnect().finally(() => {
      this.#reconnecting = undefined;
    });
  }

  async #reconnect(): Promise<void> {
    const { reconnectInitialDelayMs, reconnectMaxDelayMs } = this.#settings.options;
    const policy = { initialDelayMs: reconnectInitialDelayMs, maxDelayMs: reconnectMaxDelayMs, multiplier: 2, jitter: true };
    for (let attempt = 1; !this.#closed; attempt += 1) {
      await new Promise((r) => setTimeout(r, backoffDelay(policy, attempt)));
      if (this.#closed) return;
      let model: ChannelModel;
      try {
        model = await openConnection(this.#settings);
      } catch (err) {
        this.#logger.debug({ err, attempt }, 'rabbitmq reconnect attempt failed');
        continue;
      }
      if (this.#closed) {
        await model.close().catch(() => {});
        return;
      }
      this.#adopt(model);
      this.#logger.info({ url: this.#settings.safeUrl, attempt }, 'rabbitmq reconnected');
      const link = this.#link!;
      await Promise.all(
        [...this.#users].map(async (user) => {
          try {
            await user.onLink(link);
          } catch (e) {
            this.#logger.error({ err: e }, 'rabbitmq: rebuilding after reconnect failed');
          }
        }),
      );
      return;
    }
  }

  /** Closes for good: no reconnect after this; users hear a CLOSED loss. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w(undefined);
    const link = this.#link;
    if (link) {
      await link.model.close().catch(() => {});
      this.#lost(link, undefined);
    }
    await this.#reconnecting;
  }
}
