/**
 * rocketmq-client-nodejs 1.0.8 can leak promise rejections from its timers and gRPC streams when
 * the proxy restarts (apache/rocketmq-clients #966, #1181, #1382), which would take the process
 * down. While a driver is open, rejections whose error comes from the client are logged instead;
 * every other rejection keeps Node's default behaviour (it is rethrown as an uncaught exception).
 */
import type { Logger } from '@mqkit/core/driver';

let holders = 0;
let logger: Logger | undefined;

/** True for errors raised inside the RocketMQ client or its gRPC transport. */
export function isClientError(reason: unknown): boolean {
  if (!(reason instanceof Error)) return false;
  const stack = reason.stack ?? '';
  if (/rocketmq-client-nodejs|@grpc[\\/]grpc-js/.test(stack)) return true;
  const code = (reason as { code?: unknown }).code;
  return reason.name === 'ClientException' || /Exception$/.test(reason.name) || (typeof code === 'number' && 'details' in reason && 'metadata' in reason);
}

function onRejection(reason: unknown): void {
  if (isClientError(reason)) {
    logger?.warn({ err: reason }, 'rocketmq client: unhandled rejection inside the client (ignored)');
    return;
  }
  // Not ours: leave it to the other listeners, or behave as if no handler were installed.
  if (process.listenerCount('unhandledRejection') > 1) return;
  throw reason;
}

/** Installs the guard (reference-counted); call the returned function when the driver closes. */
export function acquireRejectionGuard(driverLogger: Logger): () => void {
  holders += 1;
  logger = driverLogger;
  if (holders === 1) process.on('unhandledRejection', onRejection);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    holders -= 1;
    if (holders === 0) process.off('unhandledRejection', onRejection);
  };
}
