import type { Adapter, Driver } from '@mqkit/core/driver';

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
        close: replaced.close ?? (() => driver.close()),
      };
      const receiver = replaced.receiver ?? driver.receiver?.bind(driver);
      if (receiver) wrapped.receiver = receiver;
      const subscribe = replaced.subscribe ?? driver.subscribe?.bind(driver);
      if (subscribe) wrapped.subscribe = subscribe;
      const begin = replaced.beginTransaction ?? driver.beginTransaction?.bind(driver);
      if (begin) wrapped.beginTransaction = begin;
      return wrapped;
    },
  };
}
