/**
 * Ack coalescing for one consumer channel.
 *
 * Acks that core hands over in the same turn of the event loop go out together on the next
 * tick: every acked tag below the channel's "floor" (the lowest delivery tag still unsettled)
 * is covered by one `basic.ack(multiple=true)` on the highest of them, and acks above a gap
 * (an earlier message still with its handler, or held for an ordered retry) go out one by one
 * at the same time, so they never wait for the slow message and free their prefetch slots.
 *
 * Exactness: a `multiple` ack on tag T settles every unsettled tag ≤ T of the channel, so it is
 * used only when every tag ≤ T was already settled here (acked, nacked, or part of this flush),
 * and T itself is one being acked now (so it is still unsettled on the broker, which would
 * otherwise close the channel for an unknown tag). An ack is still sent only after its handler;
 * it merely leaves one tick later, and the promise `ack()` returns settles once it was handed to
 * the channel (or rejects when the channel was gone by then: the broker redelivers the message).
 */
import type { Channel, Message } from 'amqplib';

/** The part of an amqplib channel the batcher needs. */
export type AckChannel = Pick<Channel, 'ack'>;

export class AckBatcher {
  readonly #channel: AckChannel;
  readonly #onError: (err: unknown) => Error;
  /** Lowest delivery tag not settled yet; every lower tag is. 0 until the first delivery. */
  #floor = 0;
  /** Settled tags above the floor (out-of-order settles), until the floor passes them. */
  readonly #above = new Set<number>();
  /** Acked since the last flush, not sent yet. */
  #queued: Message[] = [];
  #flushing: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } | undefined;
  readonly #flush = (): void => this.flush();

  /** `onError` turns a failed send (channel closed) into the error the ack promises reject with. */
  constructor(channel: AckChannel, onError: (err: unknown) => Error) {
    this.#channel = channel;
    this.#onError = onError;
  }

  /**
   * A delivery arrived (in tag order). The first one sets the floor: nothing below it was
   * delivered on this channel.
   */
  delivered(tag: number): void {
    if (this.#floor === 0) this.#floor = tag;
  }

  /** Queues an ack; it is sent on the next tick with every other ack queued until then. */
  ack(message: Message): Promise<void> {
    this.#queued.push(message);
    let flushing = this.#flushing;
    if (!flushing) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Every caller awaits it; this only keeps a flush nobody awaits from being "unhandled".
      promise.catch(() => {});
      flushing = { promise, resolve, reject };
      this.#flushing = flushing;
      process.nextTick(this.#flush);
    }
    return flushing.promise;
  }

  /** `tag` was settled directly on the channel (nack, or an ack sent on its own). */
  settled(tag: number): void {
    if (tag === this.#floor) {
      let floor = tag + 1;
      while (this.#above.delete(floor)) floor += 1;
      this.#floor = floor;
    } else if (tag > this.#floor) {
      this.#above.add(tag);
    }
  }

  /** Sends the queued acks now (also before the channel is closed on purpose). */
  flush(): void {
    const flushing = this.#flushing;
    const queued = this.#queued;
    this.#flushing = undefined;
    if (queued.length === 0) {
      flushing?.resolve();
      return;
    }
    this.#queued = [];
    try {
      for (let i = 0; i < queued.length; i += 1) this.settled(queued[i]!.fields.deliveryTag);
      const floor = this.#floor;
      let upTo: Message | undefined;
      for (let i = 0; i < queued.length; i += 1) {
        const message = queued[i]!;
        const tag = message.fields.deliveryTag;
        if (tag >= floor) this.#channel.ack(message, false);
        else if (upTo === undefined || tag > upTo.fields.deliveryTag) upTo = message;
      }
      if (upTo !== undefined) this.#channel.ack(upTo, true);
      flushing?.resolve();
    } catch (err) {
      flushing?.reject(this.#onError(err));
    }
  }
}
