import type { Adapter, Driver, DriverReceiver, ReceivedMessage } from '@mqkit/core/driver';

/**
 * An adapter whose drivers have some methods replaced: for fault injection and instrumentation
 * in tests (a broker that drops, duplicates or delays; counting sends). `override` receives the
 * real driver and returns the replacements; everything else is delegated to the real one.
 */
export function wrapAdapter(adapter: Adapter, override: (driver: Driver) => Partial<Driver>): Adapter {
  return {
    schemes: adapter.schemes,
    async create(url, options, context) {
      const driver = await adapter.create(url, options, context);
      const replaced = override(driver);
      const wrapped: Driver = {
        name: driver.name,
        capabilities: replaced.capabilities ?? driver.capabilities,
        native: driver.native,
        send: replaced.send ?? ((envelopes) => driver.send(envelopes)),
        receiver: replaced.receiver ?? ((spec) => driver.receiver(spec)),
        close: replaced.close ?? (() => driver.close()),
      };
      const topology = replaced.topology ?? driver.topology;
      if (topology) Object.assign(wrapped, { topology });
      const begin = replaced.beginTransaction ?? driver.beginTransaction?.bind(driver);
      if (begin) wrapped.beginTransaction = begin;
      return wrapped;
    },
  };
}

/**
 * A receiver with some methods replaced (fault injection at the pull contract: alter what is
 * received, break a settle); everything else is delegated to `receiver`.
 */
export function wrapReceiver<M extends ReceivedMessage>(receiver: DriverReceiver<M>, override: Partial<DriverReceiver<M>>): DriverReceiver<M> {
  const wrapped: DriverReceiver<M> = {
    batchSize: receiver.batchSize,
    scope: receiver.scope,
    receive: (max, signal) => receiver.receive(max, signal),
    ack: (messages) => receiver.ack(messages),
    nack: (messages, delayMs) => receiver.nack(messages, delayMs),
    close: () => receiver.close(),
    ...override,
  };
  const optional = { settleBatchSize: receiver.settleBatchSize, concurrency: receiver.concurrency, leaseMs: receiver.leaseMs } as const;
  for (const [name, value] of Object.entries(optional)) if (value !== undefined && !(name in override)) Object.assign(wrapped, { [name]: value });
  if (receiver.extend && !override.extend) wrapped.extend = (messages, leaseMs) => receiver.extend!(messages, leaseMs);
  if (receiver.deadLetter && !override.deadLetter) wrapped.deadLetter = (message, envelope) => receiver.deadLetter!(message, envelope);
  return wrapped;
}
