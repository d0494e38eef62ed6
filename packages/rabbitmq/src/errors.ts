/**
 * Classification of amqplib / RabbitMQ failures into mqkit error codes. AMQP reply codes come
 * from the spec (0-9-1 §1.2 constants); socket errors from Node.
 */
import { isConnectionErrno, MqError, type ErrorCode } from '@mqkit/core/driver';

/** AMQP 0-9-1 reply codes mqkit reacts to. */
export const REPLY = {
  CONTENT_TOO_LARGE: 311,
  NO_ROUTE: 312,
  NO_CONSUMERS: 313,
  CONNECTION_FORCED: 320,
  INVALID_PATH: 402,
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  RESOURCE_LOCKED: 405,
  PRECONDITION_FAILED: 406,
  FRAME_ERROR: 501,
  SYNTAX_ERROR: 502,
  COMMAND_INVALID: 503,
  CHANNEL_ERROR: 504,
  UNEXPECTED_FRAME: 505,
  RESOURCE_ERROR: 506,
  NOT_ALLOWED: 530,
  NOT_IMPLEMENTED: 540,
  INTERNAL_ERROR: 541,
} as const;

const BY_REPLY: Readonly<Record<number, ErrorCode>> = {
  [REPLY.CONTENT_TOO_LARGE]: 'TOO_LARGE',
  [REPLY.NO_ROUTE]: 'UNROUTABLE',
  [REPLY.NO_CONSUMERS]: 'UNROUTABLE',
  [REPLY.CONNECTION_FORCED]: 'CONNECTION',
  [REPLY.INVALID_PATH]: 'CONFIG',
  [REPLY.ACCESS_REFUSED]: 'AUTH',
  [REPLY.NOT_FOUND]: 'NOT_FOUND',
  [REPLY.RESOURCE_LOCKED]: 'CONFIG',
  [REPLY.PRECONDITION_FAILED]: 'CONFIG',
  [REPLY.RESOURCE_ERROR]: 'CONNECTION',
  [REPLY.NOT_ALLOWED]: 'AUTH',
  [REPLY.NOT_IMPLEMENTED]: 'UNSUPPORTED',
  [REPLY.INTERNAL_ERROR]: 'CONNECTION',
};

const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED)/;

function field(err: unknown, name: string): unknown {
  return typeof err === 'object' && err !== null ? (err as Record<string, unknown>)[name] : undefined;
}

/** The AMQP reply code carried by an amqplib error (`code` is numeric there), if any. */
export function replyCode(err: unknown): number | undefined {
  const code = field(err, 'code');
  if (typeof code === 'number') return code;
  const message = err instanceof Error ? err.message : '';
  const m = /\b(3\d\d|4\d\d|5\d\d) \(([A-Z-_]+)\)/.exec(message);
  return m ? Number(m[1]) : undefined;
}

/**
 * Maps anything amqplib throws (or emits) to an MqError. `context` goes into the message; it
 * must not contain secrets (pass topic / queue names only).
 */
export function classifyError(err: unknown, context: string): MqError {
  if (err instanceof MqError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const text = `${context}: ${message}`;
  const reply = replyCode(err);
  if (reply !== undefined) {
    let code: ErrorCode = BY_REPLY[reply] ?? 'INTERNAL';
    // amqplib reports a refused login as 403 or as "ACCESS_REFUSED" in a handshake error.
    if (reply === REPLY.NOT_ALLOWED && /vhost/i.test(message)) code = 'NOT_FOUND';
    // A channel or connection closed by a protocol error is recovered by the adapter: retry.
    const retryable = code === 'CONNECTION';
    return new MqError(code, text, { cause: err, retryable, details: { replyCode: reply } });
  }
  // The broker closes the handshake instead of answering connection.open: the vhost does not
  // exist or the user may not use it (amqplib shows no reply code for this case).
  if (/Expected ConnectionOpenOk; got <ConnectionClose/.test(message)) {
    return new MqError('NOT_FOUND', `${context}: the broker refused to open the vhost (unknown vhost, or the user has no permission on it)`, {
      cause: err,
    });
  }
  if (/ACCESS.REFUSED|authentication|PLAIN login refused/i.test(message)) {
    return new MqError('AUTH', text, { cause: err });
  }
  const sysCode = field(err, 'code');
  if (typeof sysCode === 'string') {
    if (TLS_CODE.test(sysCode)) return new MqError('CONFIG', text, { cause: err, details: { code: sysCode } });
    if (isConnectionErrno(sysCode)) return new MqError('CONNECTION', text, { cause: err, details: { code: sysCode } });
  }
  if (err instanceof RangeError) return new MqError('TOO_LARGE', text, { cause: err });
  // "Channel ended, no reply will be forthcoming": a channel RPC (e.g. opening the confirm
  // channel) was pending when the connection died. Like the others here: a lost link, retry.
  if (field(err, 'name') === 'IllegalOperationError' || /channel (is )?closed|channel ended|connection (is )?closed|socket (closed|hang up)|Unexpected close/i.test(message)) {
    return new MqError('CONNECTION', text, { cause: err });
  }
  if (/message nacked/i.test(message)) return new MqError('NOT_CONFIRMED', text, { cause: err });
  if (/timeout|timed out/i.test(message)) return new MqError('TIMEOUT', text, { cause: err });
  return new MqError('INTERNAL', text, { cause: err });
}
