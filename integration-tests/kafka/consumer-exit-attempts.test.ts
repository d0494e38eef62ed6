/**
 * Attempts survive a consumer crash (#16 defect 4): Kafka keeps no delivery count, so the adapter
 * records taken records in its offset-commit metadata. A message whose handler kills the process
 * (`process.exit`, as an OOM or a native crash would) must come back with attempt 2, 3, … in the
 * next process, and reach the dead-letter topic after `retry.maxAttempts` instead of crashing
 * every consumer for ever. The crashing consumer is a child process of this test.
 */
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { HEADERS } from '@mqkit/core';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueGroup } from '../src/names.ts';
import { waitFor } from '../src/wait.ts';
import { closeAll, createTopic, kafkaUrl, openKafka } from './harness.ts';

afterAll(closeAll);

const MAX_ATTEMPTS = 3;

/** Runs one consumer process until it exits (the crash) or `until` holds; returns what it saw. */
async function runChild(
  topic: string,
  group: string,
  until: () => boolean,
  onSeen?: (seen: { id: string; attempt: number }) => void,
): Promise<{ seen: Array<{ id: string; attempt: number }>; code: number | null }> {
  const child = fork(join(import.meta.dirname, 'fixtures', 'crash-consumer.ts'), [kafkaUrl, topic, group, String(MAX_ATTEMPTS)], {
    execArgv: ['--conditions=mqkit-source', '--no-warnings'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const seen: Array<{ id: string; attempt: number }> = [];
  child.on('message', (msg: { id?: string; attempt?: number }) => {
    if (msg.id === undefined) return;
    seen.push({ id: msg.id, attempt: msg.attempt! });
    onSeen?.(seen.at(-1)!);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let code: number | null | undefined;
  void exited.then((c) => (code = c));
  try {
    await waitFor('the child to crash or the condition to hold', () => code !== undefined || until(), { timeoutMs: 90_000, intervalMs: 100 });
  } finally {
    if (code === undefined) {
      child.kill('SIGKILL');
      await exited;
    }
  }
  return { seen, code: code ?? null };
}

describe('kafka: attempts across consumer crashes', () => {
  it(`a message whose handler exits the process comes back with attempt 2, 3, … and is dead-lettered after maxAttempts=${MAX_ATTEMPTS}`, async () => {
    const topic = await createTopic('crash-attempts', 1);
    const group = uniqueGroup('crash-attempts');
    const client = await openKafka();
    const dead: Array<{ id: string; headers: Readonly<Record<string, string>> }> = [];
    await client.subscribe(`${topic}-dlq`, { group: uniqueGroup('crash-dlq'), handler: (d) => void dead.push({ id: d.id, headers: d.headers }) });
    await client.publish(topic, { crash: false }, { id: 'before' });
    await client.publish(topic, { crash: true }, { id: 'poison' });
    await client.publish(topic, { crash: false }, { id: 'after' });

    const poisonAttempts: number[] = [];
    const handled = new Set<string>();
    for (let run = 1; run <= MAX_ATTEMPTS + 2 && dead.length === 0; run += 1) {
      const { seen, code } = await runChild(topic, group, () => dead.length > 0);
      for (const s of seen) {
        if (s.id === 'poison') poisonAttempts.push(s.attempt);
        else handled.add(s.id);
      }
      console.info(`[crash-attempts] run ${run}: exit ${code}, deliveries ${JSON.stringify(seen)}`);
    }
    await waitFor('the poison message in the DLQ', () => dead.length > 0, { timeoutMs: 60_000 });
    // Each crash counted: the handler ran at attempts 1..maxAttempts, never again.
    expect(poisonAttempts).toEqual([1, 2, 3]);
    expect(dead.map((d) => d.id)).toEqual(['poison']);
    expect(Number(dead[0]!.headers[HEADERS.deadLetterAttempts])).toBeGreaterThanOrEqual(MAX_ATTEMPTS);
    console.info(`[crash-attempts] DLQ headers: ${JSON.stringify(dead[0]!.headers)}`);
    // The others were handled too (the one after the poison at least once, before it moved on).
    expect([...handled].sort()).toEqual(['after', 'before']);
  }, 300_000);

  it('a poison message that arrives while the consumer runs (handed over without waiting for a commit) is counted at every crash too', async () => {
    const topic = await createTopic('crash-attempts-live', 1);
    const group = uniqueGroup('crash-attempts-live');
    const client = await openKafka();
    const dead: string[] = [];
    await client.subscribe(`${topic}-dlq`, { group: uniqueGroup('crash-live-dlq'), handler: (d) => void dead.push(d.id) });
    await client.publish(topic, { crash: false }, { id: 'before' });
    const poisonAttempts: number[] = [];
    let published = false;
    for (let run = 1; run <= MAX_ATTEMPTS + 2 && dead.length === 0; run += 1) {
      const { seen, code } = await runChild(
        topic,
        group,
        () => dead.length > 0,
        (s) => {
          // Published once the first consumer has handled 'before': its first commit has landed,
          // so the poison is handed over within the look-ahead, before any commit records it.
          if (s.id !== 'before' || published) return;
          published = true;
          void client.publish(topic, { crash: true }, { id: 'poison' }).then(() => client.publish(topic, { crash: false }, { id: 'after' }));
        },
      );
      for (const s of seen) if (s.id === 'poison') poisonAttempts.push(s.attempt);
      console.info(`[crash-attempts-live] run ${run}: exit ${code}, deliveries ${JSON.stringify(seen)}`);
    }
    await waitFor('the poison message in the DLQ', () => dead.length > 0, { timeoutMs: 60_000 });
    expect(poisonAttempts).toEqual([1, 2, 3]);
    expect(dead).toEqual(['poison']);
  }, 300_000);
});
