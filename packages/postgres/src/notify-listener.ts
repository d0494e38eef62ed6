import pg from 'pg';
import { silentLogger, type Logger } from '@mqkit/core';
import { quoteIdent } from './identifiers.ts';

/**
 * One dedicated connection LISTENing on the outbox channel. A wake-up that arrives while nobody
 * waits is remembered, so a relay busy publishing never misses one. When the connection is down,
 * waits simply run to their timeout (polling) while it reconnects on the next wait.
 */
export class NotifyListener {
  readonly #config: pg.ClientConfig;
  readonly #channel: string;
  readonly #logger: Logger;
  readonly #waiters = new Set<() => void>();
  #client: pg.Client | undefined;
  #connecting: Promise<void> | undefined;
  #signalled = false;
  #closed = false;

  constructor(config: pg.ClientConfig, channel: string, logger: Logger = silentLogger) {
    this.#config = config;
    this.#channel = quoteIdent(channel, 'channel');
    this.#logger = logger;
  }

  /** Whether LISTEN is currently active (otherwise waits fall back to polling). */
  get listening(): boolean {
    return this.#client !== undefined && this.#connecting === undefined;
  }

  /** Resolves on a NOTIFY, after `timeoutMs`, or when `signal` aborts. */
  async wait(timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (this.#closed || signal.aborted) return;
    if (!this.#client && !this.#connecting) this.#connecting = this.#connect();
    if (this.#signalled) {
      this.#signalled = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal.addEventListener('abort', done, { once: true });
      this.#waiters.add(done);
    });
    this.#signalled = false;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const w of [...this.#waiters]) w();
    await this.#connecting;
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  #wake(): void {
    if (this.#waiters.size === 0) {
      this.#signalled = true;
      return;
    }
    for (const w of [...this.#waiters]) w();
  }

  async #connect(): Promise<void> {
    const client = new pg.Client(this.#config);
    client.on('notification', () => this.#wake());
    client.on('error', (err) => {
      this.#logger.warn({ err: err.message }, 'outbox LISTEN connection failed; polling until it reconnects');
      if (this.#client === client) this.#client = undefined;
      client.end().catch(() => {});
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.#channel}`);
      if (this.#closed) {
        await client.end().catch(() => {});
        return;
      }
      this.#client = client;
      // Rows committed before LISTEN took effect sent their NOTIFY to nobody: look once more.
      this.#wake();
    } catch (err) {
      this.#logger.warn({ err: (err as Error).message }, 'outbox LISTEN failed; polling');
      await client.end().catch(() => {});
    } finally {
      this.#connecting = undefined;
    }
  }
}
