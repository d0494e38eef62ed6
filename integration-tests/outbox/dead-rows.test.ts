/**
 * Outbox rows that fail for good, end to end on real PostgreSQL and RabbitMQ: a topic that no group
 * queue is bound to yet (the producer deployed before its consumers) makes every publish
 * UNROUTABLE. The rows are retried up to the relay's maxAttempts, holding their key back meanwhile,
 * then moved to the dead table; once the consumer group exists, replayDead() publishes them, and
 * the consumer receives them in their key's order.
 */
import { connect, type Client } from '@mqkit/core';
import { migrate, postgresOutbox, type PostgresOutbox } from '@mqkit/postgres';
import { rabbitmq } from '@mqkit/rabbitmq';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueGroup, uniqueIdent, uniqueTopic } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';
import { deleteTopicResources } from '../rabbitmq/cleanup.ts';

const pgUrl = requireBroker('postgres').url;
const amqpUrl = requireBroker('rabbitmq').url;
const table = uniqueIdent('ob_dead');
const topic = uniqueTopic('outbox-dead');
let pool: pg.Pool;
let mq: Client;
let box: PostgresOutbox;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: pgUrl, max: 4 });
  pool.on('error', () => {});
  await migrate(pool, { table, dedupTable: `${table}_dedup` });
  mq = await connect(amqpUrl, { adapters: [rabbitmq()], publish: { timeoutMs: 5_000 } });
  box = postgresOutbox(mq, {
    pool,
    table,
    dedupTable: `${table}_dedup`,
    relay: { maxAttempts: 3, pollIntervalMs: 50, backoff: { initialDelayMs: 50, maxDelayMs: 100 } },
  });
});

afterAll(async () => {
  await box?.close();
  await mq?.close({ timeoutMs: 2_000 });
  await deleteTopicResources(amqpUrl, [topic]).catch(() => {});
  await pool
    ?.query(`DROP TABLE IF EXISTS "${table}" CASCADE; DROP TABLE IF EXISTS "${table}_dead"; DROP TABLE IF EXISTS "${table}_dedup"; DROP FUNCTION IF EXISTS "${table}_notify"()`)
    .catch(() => {});
  await pool?.end();
});

it('UNROUTABLE rows go dead after maxAttempts and are published in key order once replayed', async () => {
  const tx = await pool.connect();
  const ids: string[] = [];
  try {
    await tx.query('BEGIN');
    for (let seq = 0; seq < 3; seq += 1) ids.push(await box.outbox.enqueue(tx, topic, { seq }, { key: 'order-1' }));
    await tx.query('COMMIT');
  } finally {
    tx.release();
  }
  box.relay.start();
  // Each row gets its 3 attempts in turn (the later ones wait behind the retrying one), then is dead.
  const dead = await waitFor('three dead rows', async () => {
    const rows = await box.outbox.listDead();
    return rows.length === 3 && rows;
  }, { timeoutMs: 30_000, intervalMs: 100 });
  expect(dead.map((d) => d.envelope.id)).toEqual(ids);
  expect(dead.every((d) => d.attempts === 3 && d.lastError.startsWith('UNROUTABLE'))).toBe(true);
  expect(await box.store.metrics()).toMatchObject({ pending: 0, dead: 3 });

  // The consumer group comes up (its queue is bound); the operator replays.
  const received: number[] = [];
  const sub = await mq.subscribe<{ seq: number }>(topic, {
    group: uniqueGroup('outbox-dead'),
    ordered: true,
    handler: async (msg) => {
      received.push(msg.payload.seq);
    },
  });
  try {
    expect(await box.outbox.replayDead()).toBe(3);
    await waitFor('the replayed rows delivered', () => received.length >= 3, { timeoutMs: 30_000 });
    await sleep(300);
    expect(received).toEqual([0, 1, 2]);
    expect(await box.store.metrics()).toMatchObject({ pending: 0, dead: 0 });
  } finally {
    await sub.close();
  }
});
