/**
 * The application's answer to the broker's transaction check-back: when a producer sent a half
 * message but never committed or rolled back (it crashed, or the decision was lost), the broker
 * asks a producer of the topic what became of the local transaction.
 */
import type { Envelope } from '@mqkit/core/driver';
import type { MessageView } from 'rocketmq-client-nodejs';
import { fromMessageView } from './message-codec.ts';

/** What the local state says about a half message's transaction. */
export type TransactionState = 'commit' | 'rollback' | 'unknown';

/** A half message the broker asks about. */
export interface CheckedMessage extends Envelope {
  /** The broker's message id. */
  readonly messageId: string;
}

/**
 * Answers a check-back from the application's own state (e.g. "is the order row committed?").
 * `unknown` (or a throw) leaves the message pending: the broker asks again later, and rolls it
 * back after its check limit (`transactionCheckMax`, 15 by default).
 */
export type TransactionCheck = (message: CheckedMessage) => TransactionState | Promise<TransactionState>;

/** `TransactionResolution` of the gRPC protocol (not re-exported by the client). */
export const RESOLUTION = { unspecified: 0, commit: 1, rollback: 2 } as const;

/** The client's checker interface, adapted to a {@link TransactionCheck}. */
export function nativeChecker(check: TransactionCheck | undefined, onError: (err: unknown) => void): { check(view: MessageView): Promise<number> } {
  return {
    async check(view: MessageView): Promise<number> {
      if (!check) return RESOLUTION.unspecified;
      try {
        const state = await check({ ...fromMessageView(view), messageId: view.messageId });
        if (state === 'commit') return RESOLUTION.commit;
        if (state === 'rollback') return RESOLUTION.rollback;
        return RESOLUTION.unspecified;
      } catch (err) {
        onError(err);
        return RESOLUTION.unspecified;
      }
    },
  };
}
