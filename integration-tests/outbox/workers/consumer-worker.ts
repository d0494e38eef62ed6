/**
 * A consumer process for the exactly-once crash test: applies each order's effect with
 * exactlyOnce() (effect + processed mark in one transaction). With CRASH_ON_ID, it SIGKILLs
 * itself right after that message's transaction committed, before the ack.
 */
import { connect } from '@mqkit/core';
import type { Adapter } from '@mqkit/core/driver';
import { exactlyOnce, PostgresDedupStore } from '@mqkit/postgres';
import pg from 'pg';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};

const pool = new pg.Pool({ connectionString: env('PG_URL'), max: 4 });
pool.on('error', (err) => console.error('idle pg client failed:', err.message));
const store = new PostgresDedupStore(pool, { dedupTable: env('DEDUP_TABLE') });
const effects = env('EFFECTS_TABLE');
const seen = env('SEEN_TABLE');
const crashOn = process.env.CRASH_ON_ID;

const mod = (await import(env('MQ_ADAPTER'))) as { adapter: () => Adapter };
const options = JSON.parse(process.env.MQ_OPTIONS ?? '{}') as Record<string, unknown>;
const mq = await connect(env('MQ_URL'), { adapters: [mod.adapter()], options });
const apply = exactlyOnce<{ order: number }>(pool, store, async (m, tx) => {
  await tx.query(`INSERT INTO "${effects}" (id, order_no) VALUES ($1, $2)`, [m.id, m.payload.order]);
});
await mq.subscribe<{ order: number }>(env('TOPIC'), {
  group: env('GROUP'),
  concurrency: 4,
  handler: async (m) => {
    // Outside the transaction: proves the message was delivered again after the crash.
    await pool.query(`INSERT INTO "${seen}" (id, attempt, pid) VALUES ($1, $2, $3)`, [m.id, m.attempt, process.pid]);
    await apply(m);
    if (m.id === crashOn) {
      console.log('CRASHING after commit of', m.id);
      process.kill(process.pid, 'SIGKILL');
      await new Promise(() => {});
    }
  },
});
console.log('READY', process.pid);
