/**
 * A relay process for the crash tests: connects to MQ_URL with the adapter package MQ_ADAPTER,
 * relays the outbox table OUTBOX_TABLE of PG_URL until it is killed.
 */
import { connect } from '@mqkit/core';
import type { Adapter } from '@mqkit/core/driver';
import { postgresOutbox } from '@mqkit/postgres';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};

const mod = (await import(env('MQ_ADAPTER'))) as { adapter: () => Adapter };
const options = JSON.parse(process.env.MQ_OPTIONS ?? '{}') as Record<string, unknown>;
const leaseMs = Number(process.env.LEASE_MS ?? 3_000);
// The relay refuses a lease that does not outlast a publish: short leases (fast takeover after a
// SIGKILL) need a shorter publish timeout.
const mq = await connect(env('MQ_URL'), { adapters: [mod.adapter()], options, publish: { timeoutMs: Math.max(1, leaseMs - 500) } });
const box = postgresOutbox(mq, {
  url: env('PG_URL'),
  table: env('OUTBOX_TABLE'),
  dedupTable: env('DEDUP_TABLE'),
  relayId: process.env.RELAY_ID ?? `relay-${process.pid}`,
  maxPerKey: Number(process.env.MAX_PER_KEY ?? 0),
  relay: {
    batchSize: Number(process.env.BATCH_SIZE ?? 200),
    leaseMs,
    pollIntervalMs: 500,
  },
});
box.relay.start();
console.log('READY', process.pid);
process.on('SIGTERM', () => {
  void box.close().then(() => mq.close()).then(() => process.exit(0));
});
