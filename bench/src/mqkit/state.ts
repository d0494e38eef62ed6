import type { Client, Subscription } from '@mqkit/core';

/** What an mqkit row keeps between setup, run and teardown. */
export interface MqkitState {
  client: Client;
  topic: string;
  body: Uint8Array;
  subscription?: Subscription;
}
