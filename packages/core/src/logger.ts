/**
 * A pino-compatible logger shape: pass a pino logger (or anything with these methods) to
 * `connect()`. mqkit is silent by default and never logs secrets or payloads.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => {};

/** The default logger: discards everything. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
