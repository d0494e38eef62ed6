/**
 * The `mqkit` CLI scenario every broker's cli.test.ts runs (issue #20): a consumer whose handler
 * always throws fills the dead-letter topic; `dlq ls` shows depth and reason, `dlq show` leaves
 * them there, `lag` shows the group's backlog, `dlq replay` moves them back and a fixed consumer
 * then gets every message; `health` exits 0, and 1 on an unreachable URL. The CLI runs in-process
 * (`run()` from @mqkit/cli) with the broker URL, as `npx mqkit --url …` would.
 */
import type { DlqLsDocument, DlqReplayDocument, DlqShowDocument, LagDocument, TopologyDocument } from '@mqkit/cli';
import { run } from '@mqkit/cli';
import { connect, type Client, type Subscription } from '@mqkit/core';
import type { Adapter } from '@mqkit/core/driver';
import { expect } from 'vitest';
import { waitFor } from './wait.ts';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  json<T = unknown>(): T;
}

/** `mqkit …args` in this process. */
export async function mqkit(args: readonly string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env });
  return {
    code,
    stdout,
    stderr,
    json: <T,>() => {
      try {
        return JSON.parse(stdout) as T;
      } catch {
        throw new Error(`mqkit ${args.join(' ')} exited ${code} without JSON: ${stderr || stdout}`);
      }
    },
  };
}

export interface ScenarioOptions {
  url: string;
  adapter: Adapter;
  /** Fresh names for this run. */
  topic: string;
  group: string;
  /** Connect options the broker needs beyond the adapter (e.g. topology). */
  connectOptions?: Record<string, unknown>;
  /** Subscription options the broker needs (e.g. SQS wait times). */
  subscribeOptions?: Record<string, unknown>;
  /** Check `lag` shows this group's backlog (after 2 more publishes while nobody consumes). */
  lag?: boolean;
}

/** Runs the whole scenario; returns what the CLI printed at each step for extra checks. */
export async function dlqScenario(o: ScenarioOptions): Promise<{ ids: string[]; later: string[] }> {
  const client: Client = await connect(o.url, { adapters: [o.adapter], topology: 'create', ...(o.connectOptions ?? {}) });
  const subs: Subscription[] = [];
  try {
    await client.declare({ topic: o.topic, groups: [o.group], deadLetter: true });
    const failing = await client.subscribe(o.topic, {
      group: o.group,
      retry: { maxAttempts: 2, initialDelayMs: 50, maxDelayMs: 50 },
      handler: async () => {
        throw new Error('poison: handler bug #42');
      },
      ...(o.subscribeOptions ?? {}),
    });
    subs.push(failing);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await client.publish(o.topic, { order: i }, { key: `k${i}`, headers: { 'x-tenant': 'acme' } })).id);

    const url = ['--url', o.url];
    const ls = await waitFor(
      'three dead letters in dlq ls',
      async () => {
        const r = await mqkit(['dlq', 'ls', o.topic, '--json', ...url]);
        const doc = r.json<DlqLsDocument>();
        return doc.deadLetterTopics?.[0]?.depth === 3 ? doc : false;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    await failing.close();
    subs.length = 0;
    expect(ls.deadLetterTopics[0]).toMatchObject({ topic: `${o.topic}-dlq`, depth: 3, scanned: 3, matched: 3, reasons: { 'handler-failed': 3 } });
    expect(ls.deadLetterTopics[0]?.oldestAgeMs).toBeGreaterThanOrEqual(0);
    const table = await mqkit(['dlq', 'ls', o.topic, ...url]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`${o.topic}-dlq\\s+3\\s+\\d+s\\s+handler-failed=3`));

    // show: every field, and nothing removed.
    const show = await mqkit(['dlq', 'show', o.topic, '--json', ...url]);
    expect(show.code).toBe(0);
    const shown = show.json<DlqShowDocument>().messages;
    expect(shown.map((m) => m.id).sort()).toEqual([...ids].sort());
    for (const m of shown) {
      expect(m).toMatchObject({ reason: 'handler-failed', attempts: 2, originalTopic: o.topic, originalGroup: o.group, error: 'Error: poison: handler bug #42' });
      expect(m.headers['x-tenant']).toBe('acme');
      expect(m.payloadPreview).toMatch(/^\{"order":\d\}$/);
    }
    expect((await mqkit(['dlq', 'show', o.topic, '--reason', 'decode-failed', '--json', ...url])).json<DlqShowDocument>().messages).toEqual([]);
    expect((await mqkit(['dlq', 'ls', o.topic, '--json', ...url])).json<DlqLsDocument>().deadLetterTopics[0]?.depth).toBe(3);

    // lag: two more messages while the group has no consumer.
    const later: string[] = [];
    for (let i = 0; i < 2; i++) later.push((await client.publish(o.topic, { later: i })).id);
    if (o.lag !== false) {
      const rows = await waitFor(
        'backlog 2 in lag',
        async () => {
          const r = await mqkit(['lag', o.topic, '--group', o.group, '--json', ...url]);
          const doc = r.json<LagDocument>();
          const total = (doc.groups as Array<{ group: string; backlog: number }>).filter((g) => g.group === o.group).reduce((n, g) => n + g.backlog, 0);
          return total === 2 ? doc.groups : false;
        },
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      expect(rows[0]).toMatchObject({ topic: o.topic, group: o.group });
      const lagTable = await mqkit(['lag', o.topic, '--group', o.group, ...url]);
      expect(lagTable.stdout).toMatch(/^TOPIC\s+GROUP\s+(PARTITION\s+)?BACKLOG/);
    }

    // dry run changes nothing; replay moves them back (same ids), then the DLQ is empty.
    const dry = await mqkit(['dlq', 'replay', o.topic, '--dry-run', '--json', ...url]);
    expect(dry.json()).toMatchObject({ dryRun: true, replayed: 0, failed: 0 });
    expect(dry.json<DlqReplayDocument>().messages).toHaveLength(3);
    const replay = await mqkit(['dlq', 'replay', o.topic, '--rate', '100/s', '--json', ...url]);
    expect(replay.code, replay.stdout + replay.stderr).toBe(0);
    expect(replay.json()).toMatchObject({ dryRun: false, replayed: 3, failed: 0 });
    expect((await mqkit(['dlq', 'ls', o.topic, '--json', ...url])).json<DlqLsDocument>().deadLetterTopics[0]?.depth).toBe(0);

    // The fixed consumer gets the replayed three (same ids) and the two published meanwhile.
    const got = new Set<string>();
    subs.push(await client.subscribe(o.topic, { group: o.group, handler: async (d) => void got.add(d.id), ...(o.subscribeOptions ?? {}) }));
    await waitFor('all five consumed', () => [...ids, ...later].every((id) => got.has(id)), { timeoutMs: 60_000 });
    return { ids, later };
  } finally {
    await Promise.allSettled(subs.map((s) => s.close()));
    await client.close();
  }
}

/** `health` exits 0 on the broker and 1 (with a JSON reason) on an unreachable one. */
export async function healthScenario(url: string, unreachable: string, topic: string): Promise<void> {
  const ok = await mqkit(['health', '--topic', topic, '--group', `${topic}-g`, '--json', '--url', url]);
  expect(ok.code, ok.stderr).toBe(0);
  expect(ok.json()).toMatchObject({ ok: true, roundTripMs: expect.any(Number), error: null });
  const down = await mqkit(['health', '--timeout', '5000', '--json', '--url', unreachable]);
  expect(down.code).toBe(1);
  expect(down.json()).toMatchObject({ ok: false, roundTripMs: null, error: { code: expect.any(String) } });
  expect(down.stderr).toBe('');
}

/**
 * `mqkit topology verify|plan|apply` on a fresh topic (issue #22): verify exits 1 naming what is
 * missing, plan lists the same and changes nothing, apply creates it (exit 0), verify then exits 0;
 * and the declared group's first subscriber (under `topology: 'verify'`, so nothing is created on
 * the way) gets a message published after apply and before it subscribed.
 */
export async function topologyScenario(o: ScenarioOptions): Promise<void> {
  const args = ['--topic', o.topic, '--group', o.group, '--json', '--url', o.url];
  const names = (doc: TopologyDocument): string[] => doc.topics.flatMap((t) => t.missing.map((m) => `${m.kind}:${m.name}`));
  const verify = await mqkit(['topology', 'verify', ...args]);
  expect(verify.code, verify.stderr).toBe(1);
  const missing = names(verify.json<TopologyDocument>());
  expect(missing).toContain(`topic:${o.topic}`);
  const plan = await mqkit(['topology', 'plan', ...args]);
  expect(plan.code, plan.stderr).toBe(0);
  expect(names(plan.json<TopologyDocument>())).toEqual(missing);
  const apply = await mqkit(['topology', 'apply', ...args]);
  expect(apply.code, apply.stderr).toBe(0);
  const applied = apply.json<TopologyDocument>();
  expect(applied.ok).toBe(true);
  expect(applied.topics[0]!.created!.map((m) => `${m.kind}:${m.name}`)).toEqual(missing);
  const again = await mqkit(['topology', 'verify', ...args]);
  expect(again.code, again.stdout).toBe(0);

  const client = await connect(o.url, { adapters: [o.adapter], topology: 'verify', ...(o.connectOptions ?? {}) });
  try {
    const { id } = await client.publish(o.topic, { early: true });
    const seen = new Set<string>();
    await client.subscribe(o.topic, { ...(o.subscribeOptions ?? {}), group: o.group, handler: (d) => void seen.add(d.id) });
    await waitFor('the message published before the first subscriber', () => seen.has(id), { timeoutMs: 60_000 });
  } finally {
    await client.close();
  }
}
