/**
 * Exit codes, usable in probes and scripts: 0 ok; 1 unhealthy or an operation failed (broker
 * unreachable, a replay publish refused); 2 bad input (unknown topic, wrong URL, bad flags, an
 * operation the broker cannot do).
 */
import { MqError, type ErrorCode } from '@mqkit/core';

export const EXIT = { OK: 0, FAILED: 1, BAD_INPUT: 2 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Codes that mean the request itself was wrong, not the broker. */
const BAD_INPUT: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['CONFIG', 'NOT_FOUND', 'UNSUPPORTED', 'INVALID_MESSAGE', 'AUTH']);

/** The exit code for an error that ended a command. */
export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof MqError) return BAD_INPUT.has(err.code) ? EXIT.BAD_INPUT : EXIT.FAILED;
  return EXIT.FAILED;
}

/** One line for people: the code and the message, never a stack. */
export function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof MqError) return { code: err.code, message: oneLine(err.message) };
  if (err instanceof Error) return { code: 'INTERNAL', message: oneLine(err.message) };
  return { code: 'INTERNAL', message: oneLine(String(err)) };
}

const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, ' ').trim();
