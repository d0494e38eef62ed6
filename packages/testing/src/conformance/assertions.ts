import { MqError, type ErrorCode } from '@mqkit/core';
import { expect } from 'vitest';

/** Asserts `err` is an {@link MqError} of `code` and returns it for further checks. */
export function expectMqError(err: unknown, code: ErrorCode): MqError {
  expect(err).toBeInstanceOf(MqError);
  expect((err as MqError).code).toBe(code);
  return err as MqError;
}

/** Runs `fn`, which must throw an {@link MqError} of `code`; returns that error. */
export function thrownMqError(fn: () => unknown, code: ErrorCode): MqError {
  try {
    fn();
  } catch (err) {
    return expectMqError(err, code);
  }
  throw new Error(`expected an MqError ${code}, but nothing was thrown`);
}

/** Resolves with what `promise` rejects with; fails if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** Resolves with the {@link MqError} `promise` rejects with; fails if it resolves or rejects with anything else. */
export async function rejectedMqError(promise: Promise<unknown>): Promise<MqError> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(MqError);
  return err as MqError;
}
