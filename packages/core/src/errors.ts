/**
 * The one error type mqkit throws. Callers switch on {@link MqError.code} and decide whether to
 * try again from {@link MqError.retryable}; the broker client's own error stays in `cause`.
 */

/** Every error code mqkit uses, with whether an error of that code is worth retrying by default. */
export const ERROR_CODES = {
  /** The broker could not be reached or the connection dropped. */
  CONNECTION: true,
  /** The broker did not answer in time; the outcome is unknown (the message may have arrived). */
  TIMEOUT: true,
  /** The broker answered but did not confirm durable acceptance (e.g. a RabbitMQ nack). */
  NOT_CONFIRMED: true,
  /** The broker refused the message for good (e.g. a policy or a permanent error). */
  REJECTED: false,
  /** No queue or subscription could take the message (e.g. RabbitMQ mandatory return). */
  UNROUTABLE: false,
  /** The encoded message exceeds the broker's size limit. */
  TOO_LARGE: false,
  /** The message itself is invalid: empty topic, payload the codec cannot encode, bad header. */
  INVALID_MESSAGE: false,
  /** The adapter does not offer the requested feature (see its capabilities). */
  UNSUPPORTED: false,
  /** The configuration or connection URL is invalid, or the adapter package is missing. */
  CONFIG: false,
  /** Authentication or authorisation failed. */
  AUTH: false,
  /** A topic, queue or group does not exist. */
  NOT_FOUND: false,
  /** The client, publisher or subscription is closed. */
  CLOSED: false,
  /** The operation was cancelled by its AbortSignal. */
  ABORTED: false,
  /** A bug or an unexpected state inside mqkit or the broker client. */
  INTERNAL: false,
} as const satisfies Record<string, boolean>;

/** One of the codes in {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Options for {@link MqError}. */
export interface MqErrorOptions {
  /** The underlying (native) error. */
  cause?: unknown;
  /** Overrides the code's default retryability. */
  retryable?: boolean;
  /** Structured, non-secret context (topic, message id, broker response code, …). */
  details?: Readonly<Record<string, unknown>>;
}

/** The error every mqkit operation rejects with. */
export class MqError extends Error {
  override readonly name = 'MqError';
  /** What went wrong, as a stable code. */
  readonly code: ErrorCode;
  /** Whether repeating the same operation may succeed. */
  readonly retryable: boolean;
  /** Structured, non-secret context. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: MqErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? ERROR_CODES[code];
    this.details = options.details ?? {};
  }

  /** True when `err` is an {@link MqError}, optionally of the given code. */
  static is(err: unknown, code?: ErrorCode): err is MqError {
    return err instanceof MqError && (code === undefined || err.code === code);
  }
}

/**
 * Wraps anything thrown into an {@link MqError}: an MqError passes through; anything else becomes
 * `fallback` with the original as `cause`.
 */
export function toMqError(err: unknown, fallback: ErrorCode = 'INTERNAL', message?: string): MqError {
  if (err instanceof MqError) return err;
  const text = message ?? (err instanceof Error ? err.message : String(err));
  return new MqError(fallback, text, { cause: err });
}
