/**
 * Fault tests of the mqkit Kafka adapter against the real broker (issue 4):
 * 1. 10,000 keyed publishes while the broker is SIGKILLed and restarted mid-stream, published one
 *    at a time per key, and again pipelined (many messages of each key in flight at once).
 * 2. 10,000 keyed messages consumed by a consumer process that is SIGKILLed mid-batch.
 * Both check: every resolved publish is consumed, none lost, per-key order of effects holds,
 * and with the idempotent consumer each id's effect happens once.
 */
import { execFile, fork } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { idempotent, MemoryDedupStore, type Client } from '@mqkit/core';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueGroup } from '../src/names.ts';
import { waitFor } from '../src/wait.ts';
import { closeAll, createTopic, kafkaUrl, openKafka } from './harness.ts';

const run = promisify(execFile);
const repo = join(import.meta.dirname, '..', '..');
const TOTAL = 10_000;
const KEYS = 50;

async function brokers(command: 'kill' | 'restart' | 'status'): Promise<void> {
  await run('bash', [join(repo, 'scripts/brokers/brokers.sh'), command, 'kafka'], { cwd: repo, timeout: 180_000 });
}

/** Effects as the "database" sees them: once per id thanks to the dedup marks. */
class Effects {
  readonly count = new Map<string, number>();
  readonly byKey = new Map<string, number[]>();
  apply(id: string, key: string, seq: number): void {
    this.count.set(id, (this.count.get(id) ?? 0) + 1);
    const list = this.byKey.get(key) ?? [];
    list.push(seq);
    this.byKey.set(key, list);
  }
  /** Keys whose effects are not in increasing seq order. */
  outOfOrder(): string[] {
    return [...this.byKey].filter(([, seqs]) => seqs.some((s, i) => i > 0 && s <= seqs[i - 1]!)).map(([k]) => k);
  }
  duplicates(): string[] {
    return [...this.count].filter(([, n]) => n > 1).map(([id]) => id);
  }
}

afterAll(closeAll);

/** Publishes every message of the test; `done` is called once per publish as it settles. */
type PublishPattern = (publisher: Client, topic: string, done: (id: string, error?: unknown) => void) => Promise<void>;

/** One at a time per key (50 keys in parallel), paced: a service sending as it goes. */
const perKeySequential: PublishPattern = (publisher, topic, done) =>
  Promise.all(
    Array.from({ length: KEYS }, async (_, k) => {
      const key = `key-${k}`;
      for (let seq = 0; seq < TOTAL / KEYS; seq += 1) {
        const id = `${key}-${seq}`;
        await publisher.publish(topic, { key, seq }, { key, id }).then(
          () => done(id),
          (err: unknown) => done(id, err),
        );
        // Paced (≤ ~2,000 msg/s over 50 keys) so that the kill lands mid-stream.
        await new Promise((r) => setTimeout(r, 25));
      }
    }),
  ).then(() => {});

/**
 * Waves of 100 publishes over 8 keys every 20 ms, none awaited before the next wave: many
 * messages of each key in flight at once, in several pipelined produce requests (the adapter
 * declares orderedSends), so the kill fails requests with more of the same keys queued behind.
 */
const pipelinedWaves: PublishPattern = async (publisher, topic, done) => {
  const keys = 8;
  const next = new Array<number>(keys).fill(0);
  const all: Array<Promise<void>> = [];
  for (let sent = 0; sent < TOTAL; sent += 100) {
    for (let i = 0; i < 100; i += 1) {
      const k = (sent + i) % keys;
      const key = `key-${k}`;
      const seq = next[k]!;
      next[k] = seq + 1;
      const id = `${key}-${seq}`;
      all.push(
        publisher.publish(topic, { key, seq }, { key, id }).then(
          () => done(id),
          (err: unknown) => done(id, err),
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await Promise.all(all);
};

describe('kafka fault tests', () => {
  for (const [label, pattern] of [
    ['one publish at a time per key', perKeySequential],
    ['publishes pipelined, many per key in flight', pipelinedWaves],
  ] as const) {
  it(`${TOTAL} keyed publishes (${label}) survive a broker SIGKILL + restart mid-stream`, async () => {
    const topic = await createTopic('fault-broker');
    const consumerClient = await openKafka();
    // A broker restart takes 10-100 s on a busy 2-core machine: give publishes room to outlive it.
    const publisher = await openKafka({ publish: { timeoutMs: 300_000 } });
    const effects = new Effects();
    const delivered = new Set<string>();
    await consumerClient.subscribe<{ key: string; seq: number }>(topic, {
      group: uniqueGroup('fault-broker'),
      ordered: true,
      concurrency: 16,
      middleware: [
        (d, next) => {
          delivered.add(d.id);
          return next();
        },
        idempotent(new MemoryDedupStore()),
      ],
      handler: (d) => effects.apply(d.id, d.payload.key, d.payload.seq),
    });

    const acked = new Set<string>();
    const failed: string[] = [];
    let resolvedCount = 0;
    const publishing = pattern(publisher, topic, (id, err) => {
      if (err === undefined) acked.add(id);
      else failed.push(`${id}: ${(err as Error).message}`);
      resolvedCount += 1;
    });
    await waitFor('2,000 publishes before the kill', () => resolvedCount >= 2_000, { timeoutMs: 60_000 });
    const killedAt = resolvedCount;
    const t0 = Date.now();
    await brokers('kill');
    await new Promise((r) => setTimeout(r, 2_000));
    await brokers('restart');
    const outageMs = Date.now() - t0;
    await publishing;
    console.info(`[fault-broker] killed after ${killedAt} publishes, broker back after ${outageMs} ms; ${acked.size} acknowledged, ${failed.length} failed${failed.length ? ` (first: ${failed[0]})` : ''}`);
    expect(killedAt).toBeLessThan(TOTAL);

    try {
      await waitFor(`all ${acked.size} acknowledged messages consumed`, () => [...acked].every((id) => delivered.has(id)), { timeoutMs: 240_000, intervalMs: 500 });
    } finally {
      const missing = [...acked].filter((id) => !delivered.has(id));
      const missingKeys = new Set(missing.map((id) => id.replace(/-\d+$/, '')));
      console.info(`[fault-broker] ${missing.length} not consumed yet, keys: ${[...missingKeys].slice(0, 20).join(' ')}`);
      if (missing.length > 0) {
        // Tell a producer-side loss (not in the log) from a consumer-side one (in the log, not delivered).
        const inLog = new Set<string>();
        const probe = await openKafka();
        await probe.subscribe(topic, { group: uniqueGroup('fault-probe'), concurrency: 64, handler: (d) => void inLog.add(d.id) });
        await new Promise((r) => setTimeout(r, 15_000));
        console.info(`[fault-broker] of the missing, ${missing.filter((id) => inLog.has(id)).length} are in the topic (a fresh group read ${inLog.size})`);
      }
    }
    await new Promise((r) => setTimeout(r, 2_000));
    const lost = [...acked].filter((id) => !effects.count.has(id));
    expect(lost).toEqual([]);
    expect(effects.duplicates()).toEqual([]);
    expect(effects.outOfOrder()).toEqual([]);
  }, 600_000);
  }

  it(`${TOTAL} keyed messages survive a consumer process SIGKILLed mid-batch`, async () => {
    const topic = await createTopic('fault-consumer');
    const group = uniqueGroup('fault-consumer');
    const publisher = await openKafka();
    const perKey = TOTAL / KEYS;
    const ids: string[] = [];
    await Promise.all(
      Array.from({ length: KEYS }, async (_, k) => {
        const key = `key-${k}`;
        for (let seq = 0; seq < perKey; seq += 1) {
          const id = `${key}-${seq}`;
          await publisher.publish(topic, { key, seq }, { key, id });
          ids.push(id);
        }
      }),
    );

    const effects = new Effects();
    const done = new Set<string>(); // the dedup marks ("in the same database transaction as the effect")
    const applyOnce = (id: string, key: string, seq: number): void => {
      if (done.has(id)) return;
      done.add(id);
      effects.apply(id, key, seq);
    };

    const child = fork(join(import.meta.dirname, 'fixtures', 'ipc-consumer.ts'), [kafkaUrl, topic, group], {
      execArgv: ['--conditions=mqkit-source', '--no-warnings'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.on('message', (msg: { effect?: string; key?: string; seq?: number; token?: string }) => {
      if (msg.effect === undefined) return;
      applyOnce(msg.effect, msg.key!, msg.seq!);
      child.send({ ack: msg.token }, () => {});
    });
    await waitFor('the child to handle 3,000 messages', () => done.size >= 3_000, { timeoutMs: 120_000 });
    child.kill('SIGKILL');
    await exited;
    const beforeKill = done.size;

    const survivor = await openKafka();
    await survivor.subscribe<{ key: string; seq: number }>(topic, {
      group,
      ordered: true,
      concurrency: 16,
      handler: (d) => applyOnce(d.id, d.payload.key, d.payload.seq),
    });
    await waitFor(`all ${TOTAL} effects`, () => done.size >= TOTAL, { timeoutMs: 120_000, intervalMs: 500 });
    console.info(`[fault-consumer] child killed after ${beforeKill} effects; survivor finished the rest`);
    expect(ids.filter((id) => !done.has(id))).toEqual([]);
    expect(effects.duplicates()).toEqual([]);
    expect(effects.outOfOrder()).toEqual([]);
  }, 300_000);
});
