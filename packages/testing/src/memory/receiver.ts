/**
 * The memory driver's consume side on the pull contract: the broker pushes up to
 * `spec.maxInFlight` messages to this consumer, `receive()` hands them to core.
 */
import { MqError, PushBuffer, type DriverReceiver, type ReceivedMessage, type SettleResults, type SubscriptionSpec } from '@mqkit/core/driver';
import { copy, type GroupHandle, type HeldMessage, type MemoryBroker, type MemoryConsumer } from './broker.ts';

/** A message held by a {@link MemoryReceiver}: its broker sequence number settles it. */
export interface MemoryMessage extends ReceivedMessage {
  readonly seq: number;
}

/** Most messages one receive() returns. */
const BATCH = 64;

export class MemoryReceiver implements DriverReceiver<MemoryMessage> {
  readonly batchSize = BATCH;
  readonly scope: string;
  readonly #group: GroupHandle;
  readonly #consumer: MemoryConsumer;
  /** Pushed by the broker, not yet received by core. */
  readonly #buffer = new PushBuffer<HeldMessage>();
  #open = true;
  readonly #onClose: () => void;

  constructor(broker: MemoryBroker, spec: SubscriptionSpec, onClose: () => void) {
    this.scope = `memory#${broker.id}\u0000${spec.topic}\u0000${spec.group}`;
    this.#onClose = onClose;
    this.#consumer = {
      maxInFlight: spec.maxInFlight,
      held: 0,
      paused: false,
      onMessage: (message) => this.#buffer.push(message),
    };
    this.#group = broker.attach(spec.topic, spec.group, this.#consumer, spec.ordered);
  }

  async receive(max: number, signal: AbortSignal): Promise<readonly MemoryMessage[]> {
    if (!this.#open) throw new MqError('CLOSED', 'subscription is closed');
    const taken = await this.#buffer.take(max, signal);
    return taken.map(({ envelope, attempt, seq }) => ({ envelope: copy(envelope), deliveryCount: attempt, id: String(seq), seq, meta: { seq: String(seq) } }));
  }

  async ack(messages: readonly MemoryMessage[]): Promise<SettleResults> {
    return this.#settle(messages, (seq) => this.#group.ack(seq));
  }

  async nack(messages: readonly MemoryMessage[], delayMs: number): Promise<SettleResults> {
    return this.#settle(messages, (seq) => this.#group.nack(seq, delayMs));
  }

  #settle(messages: readonly MemoryMessage[], action: (seq: number) => boolean): SettleResults {
    if (!this.#open) throw new MqError('CLOSED', 'subscription is closed; the message will be redelivered');
    return messages.map((m) => (action(m.seq) ? undefined : new MqError('INVALID_MESSAGE', 'message is no longer held by this consumer')));
  }

  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    // Pushed but never received: back to the queue uncounted, as a broker that never sent them.
    for (const { seq } of this.#buffer.drain()) this.#group.unclaim(seq);
    this.#group.detach();
    this.#buffer.wake();
    this.#onClose();
  }
}
