/**
 * Dead letters as the CLI shows them: mqkit's dead-letter headers read once (core's
 * deadLetterInfo), filtered by reason and group, counted by reason, previewed.
 */
import { deadLetterInfo, type DeadLetterInfo, type StoredMessage } from '@mqkit/core/driver';

/** The dead-letter topic a command argument names: itself when it ends in `-dlq`, else `<topic>-dlq` (core's default). */
export function deadLetterTopicOf(name: string): string {
  return name.endsWith('-dlq') ? name : `${name}-dlq`;
}

/** A stored message with its dead-letter facts. */
export interface DeadLetter {
  readonly message: StoredMessage;
  readonly info: DeadLetterInfo;
}

export function deadLetters(messages: readonly StoredMessage[]): DeadLetter[] {
  return messages.map((message) => ({ message, info: deadLetterInfo(message.envelope) }));
}

/** Those whose reason (and original group) match; no filter given: all. */
export function matching(letters: readonly DeadLetter[], filter: { reason?: string | undefined; group?: string | undefined }): DeadLetter[] {
  return letters.filter(
    (l) => (filter.reason === undefined || l.info.reason === filter.reason) && (filter.group === undefined || l.info.originalGroup === filter.group),
  );
}

/** Counts per reason, most frequent first. */
export function countReasons(letters: readonly DeadLetter[]): Record<string, number> {
  const counts = new Map<string, number>();
  for (const l of letters) counts.set(l.info.reason, (counts.get(l.info.reason) ?? 0) + 1);
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

const PREVIEW_CHARS = 200;
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The payload as text (cut at 200 characters), or `<N bytes binary: hex…>` when it is not UTF-8. */
export function payloadPreview(body: Uint8Array): string {
  let text: string;
  try {
    text = decoder.decode(body);
  } catch {
    const hex = Buffer.from(body.subarray(0, 32)).toString('hex');
    return `<${body.byteLength} bytes binary: ${hex}${body.byteLength > 32 ? '…' : ''}>`;
  }
  return text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}…` : text;
}
