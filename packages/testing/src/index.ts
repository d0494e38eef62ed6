/**
 * `@mqkit/testing`: the in-memory broker (`memory://`) for demos and unit tests, and (from
 * `@mqkit/testing/conformance`) the suite every adapter must pass.
 */
export { memory, adapter, memoryCapabilities, MemoryDriver, type MemoryOptions } from './memory/driver.ts';
export { MemoryBroker, memoryBroker } from './memory/broker.ts';
export { MemoryOutboxStore, type MemoryTx } from './memory/outbox-store.ts';
export { wrapAdapter, wrapReceiver } from './wrap.ts';
export { ops } from './memory/ops.ts';
