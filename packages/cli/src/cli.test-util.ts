/** Helpers of the CLI's unit tests: run it in-process and fill a memory:// dead-letter topic. */
import { randomUUID } from 'node:crypto';
import { connect, type Client } from '@mqkit/core';
import { memory, memoryBroker } from '@mqkit/testing';
import { run } from './run.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json: <T = unknown>() => T;
}

/** Runs `mqkit …args` in this process. */
export async function cli(args: readonly string[], env: Record<string, string | undefined> = {}, progress = false): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env, progress });
  return { code, stdout, stderr, json: <T,>() => JSON.parse(stdout) as T };
}

/** A fresh `memory://name` and a client on it. */
export async function memoryUrl(): Promise<{ url: string; name: string; client: Client }> {
  const name = `cli${randomUUID().slice(0, 8)}`;
  const url = `memory://${name}`;
  return { url, name, client: await connect(url, { adapters: [memory()] }) };
}

/**
 * Dead-letters `count` messages of `topic` through a subscription of `group` whose handler always
 * throws (2 attempts), waits for `expectDead` dead letters of that group, then closes it.
 * Returns the ids published.
 */
export async function fillDeadLetters(client: Client, name: string, topic: string, group: string, count: number, expectDead = count): Promise<string[]> {
  const sub = await client.subscribe(topic, {
    group,
    retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 1 },
    handler: async () => {
      throw new Error('boom: cannot handle');
    },
  });
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push((await client.publish(topic, { n: i }, { key: `k${i}`, headers: { 'x-app': 'a' } })).id);
  const broker = memoryBroker(name);
  const deadline = Date.now() + 5_000;
  // memory:// groups start at the retained log: count this group's dead letters, not the topic's.
  const mine = (): number => broker.published(`${topic}-dlq`).filter((e) => e.headers['x-mqkit-original-group'] === group).length;
  while (mine() < expectDead) {
    if (Date.now() > deadline) throw new Error('dead letters did not arrive');
    await new Promise((r) => setTimeout(r, 5));
  }
  await sub.close();
  return ids;
}
