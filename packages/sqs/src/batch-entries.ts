/**
 * Pure helpers of batch calls: splitting entries into calls, and reading per-entry outcomes.
 */
import { MqError } from '@mqkit/core/driver';
import { classifyBatchFailure } from './errors.ts';

/** Most entries SQS takes in one batch call. */
export const SQS_BATCH_LIMIT = 10;

/** Payload budget of one batch call (SQS and SNS count the whole request against one limit). */
export const BATCH_BYTES = 256 * 1024;

/** Splits prepared entries into calls of at most 10 entries and {@link BATCH_BYTES}. */
export function chunkEntries<T extends { readonly wire: { readonly size: number } }>(entries: readonly T[], maxBytes = BATCH_BYTES): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const entry of entries) {
    if (current.length > 0 && (current.length >= SQS_BATCH_LIMIT || bytes + entry.wire.size > maxBytes)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += entry.wire.size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

interface Succeeded {
  readonly Id?: string | undefined;
  readonly MessageId?: string | undefined;
}

interface Failed {
  readonly Id?: string | undefined;
  readonly Code?: string | undefined;
  readonly Message?: string | undefined;
  readonly SenderFault?: boolean | undefined;
}

/**
 * Per-entry outcome of a batch response. An entry the response does not mention at all is NOT
 * confirmed: it is reported retryable rather than resolved.
 */
export function settleEntries(
  count: number,
  successful: readonly Succeeded[] | undefined,
  failed: readonly Failed[] | undefined,
  what: string,
  receipts: Array<string | undefined> = [],
): Array<MqError | undefined> {
  const result: Array<MqError | undefined> = new Array<MqError | undefined>(count).fill(undefined);
  const answered = new Array<boolean>(count).fill(false);
  for (const s of successful ?? []) {
    const i = Number(s.Id);
    if (Number.isInteger(i) && i >= 0 && i < count) {
      answered[i] = true;
      receipts[i] = s.MessageId;
    }
  }
  for (const f of failed ?? []) {
    const i = Number(f.Id);
    if (Number.isInteger(i) && i >= 0 && i < count) {
      answered[i] = true;
      result[i] = classifyBatchFailure(f, what);
    }
  }
  for (let i = 0; i < count; i++) {
    if (!answered[i]) result[i] = new MqError('NOT_CONFIRMED', `${what}: entry missing from the response`);
  }
  return result;
}
