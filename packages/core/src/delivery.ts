/** Options for {@link Delivery.nack}. */
export interface NackOptions {
  /** Redeliver no earlier than this many ms from now. @default 0 */
  delayMs?: number;
}

/** How a delivery was settled: see {@link Delivery.settlement}. */
export type Settlement = 'ack' | 'nack' | 'dead-letter';

/** A message handed to a subscription's handler, with the controls to settle it. */
export interface Delivery<T = unknown> {
  readonly id: string;
  readonly topic: string;
  readonly group: string;
  readonly key: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** The decoded payload. */
  readonly payload: T;
  /** The raw bytes as received. */
  readonly body: Uint8Array;
  /** Producer time, epoch ms. */
  readonly timestamp: number;
  /** 1-based delivery attempt. */
  readonly attempt: number;
  /** Broker-specific facts (partition, offset, receive count, …). */
  readonly meta: Readonly<Record<string, string>>;
  /** Aborted when the subscription gives up on this delivery (close deadline passed). */
  readonly signal: AbortSignal;
  /** Whether ack, nack or deadLetter was already called. */
  readonly settled: boolean;
  /**
   * How it was settled, once it is: `ack`, `nack` (another attempt follows) or `dead-letter`.
   * Middleware read it after `next()`: e.g. `idempotent()` marks a message done only when the
   * handler did not hand it back.
   */
  readonly settlement: Settlement | undefined;
  // `this: void`: ack, nack and deadLetter are bound, so `const { ack } = delivery` works (and
  // typescript-eslint's unbound-method knows it).
  /** Settle as done now (otherwise the runtime acks when the handler resolves). */
  ack(this: void): Promise<void>;
  /** Hand the message back for another attempt after an optional delay. */
  nack(this: void, options?: NackOptions): Promise<void>;
  /** Move it to the dead-letter topic now, recording `reason`. */
  deadLetter(this: void, reason: string): Promise<void>;
}

/** A handler: resolve to ack, throw to retry (with backoff) and finally dead-letter. */
export type Handler<T = unknown> = (delivery: Delivery<T>) => Promise<void> | void;

/**
 * Wraps a handler: run code before/after `next()`, or settle the delivery yourself and skip it.
 * Middleware run in the order given, outermost first.
 */
export type Middleware<T = unknown> = (delivery: Delivery<T>, next: () => Promise<void>) => Promise<void>;

