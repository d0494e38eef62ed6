import type { Logger } from '@mqkit/core/driver';

/** The client's logger shape (printf-style arguments). */
export interface ClientLogger {
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  close(): void;
}

/**
 * Routes the client's own logging into mqkit's logger at debug level: its default writes files
 * under ~/logs, and it logs every failed send, receive and reconnect as an error although the
 * adapter reports what matters (as MqErrors, and warnings of its own).
 */
export function clientLogger(logger: Logger): ClientLogger {
  // pino (and loggers like it) say whether debug is on: then the client's per-call lines (every
  // receive logs two) are not formatted just to be dropped.
  const levels = logger as Logger & { isLevelEnabled?: (level: string) => boolean };
  const enabled = typeof levels.isLevelEnabled === 'function' ? () => levels.isLevelEnabled!('debug') : () => true;
  const text = (args: unknown[]): string => {
    const [format, ...rest] = args;
    if (typeof format !== 'string') return args.map(String).join(' ');
    let i = 0;
    return format.replace(/%[sdjo]/g, () => {
      const value = rest[i++];
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- objects go to safeJson; String() gets primitives
      return value instanceof Error ? value.message : typeof value === 'object' ? safeJson(value) : String(value);
    });
  };
  const debug = (fields: object, args: unknown[]): void => {
    if (enabled()) logger.debug(fields, text(args));
  };
  return {
    info: (...args) => debug({ source: 'rocketmq-client' }, args),
    debug: (...args) => debug({ source: 'rocketmq-client' }, args),
    warn: (...args) => debug({ source: 'rocketmq-client' }, args),
    error: (...args) => debug({ source: 'rocketmq-client', level: 'error' }, args),
    close: () => {},
  };
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
