import { isConnectionErrno, MqError, type ErrorCode } from '@mqkit/core/driver';
import type { ChainableCommander } from 'ioredis';

const SERVER: ReadonlyArray<[RegExp, ErrorCode, boolean]> = [
  [/Connection is closed|Stream isn't writeable|enableOfflineQueue|^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|UNBLOCKED)/, 'CONNECTION', true],
  [/^(NOAUTH|WRONGPASS|NOPERM)/, 'AUTH', false],
  [/^OOM/, 'REJECTED', true], // maxmemory reached: may pass
  [/^WRONGTYPE/, 'CONFIG', false], // the topic's key holds something else than a stream
];

/** An ioredis error as an {@link MqError}: socket trouble and a loading or failing-over server are CONNECTION. */
export function toMqError(err: unknown, what: string): MqError {
  if (MqError.is(err)) return err;
  const e = err as { code?: unknown; message?: unknown; name?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const socket = isConnectionErrno(e?.code) || e?.name === 'MaxRetriesPerRequestError';
  const [, code, retryable] = socket ? SERVER[0]! : (SERVER.find(([re]) => re.test(message)) ?? [/$/, 'INTERNAL', false]);
  return new MqError(code, `${what}: ${message}`, { cause: err, retryable });
}

/** A `.catch()` handler that throws the error classified. */
export const rethrow = (what: string) => (err: unknown): never => {
  throw toMqError(err, what);
};

/** Runs a MULTI (or pipeline) and throws the first failure of any of its commands, classified. */
export async function execAll(chain: ChainableCommander, what: string): Promise<void> {
  const results = await chain.exec().catch(rethrow(what));
  const failed = results ? results.find(([err]) => err)?.[0] : new MqError('CONNECTION', 'transaction discarded');
  if (failed) throw toMqError(failed, what);
}
