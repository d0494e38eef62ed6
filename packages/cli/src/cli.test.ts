import type { DlqLsDocument, DlqShowDocument } from './index.ts';
import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '@mqkit/core';
import { memoryBroker } from '@mqkit/testing';
import { cli, fillDeadLetters, memoryUrl } from './cli.test-util.ts';

const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

async function setup(count = 3): Promise<{ url: string; name: string; client: Client; ids: string[] }> {
  const m = await memoryUrl();
  clients.push(m.client);
  const ids = await fillDeadLetters(m.client, m.name, 'orders', 'billing', count);
  return { ...m, ids };
}

describe('mqkit dlq ls', () => {
  it('lists the dead-letter topic with depth, oldest age and reasons (table and --json)', async () => {
    const { url } = await setup(3);
    const table = await cli(['dlq', 'ls', '--url', url]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^TOPIC\s+DEPTH\s+OLDEST\s+REASONS\n/);
    expect(table.stdout).toMatch(/orders-dlq\s+3\s+\d+s\s+handler-failed=3/);
    const json = await cli(['dlq', 'ls', '--json'], { MQ_URL: url });
    expect(json.code).toBe(0);
    const doc = json.json<DlqLsDocument>();
    expect(doc).toMatchObject({ adapter: 'memory', group: null });
    expect(doc.deadLetterTopics).toEqual([
      { topic: 'orders-dlq', depth: 3, scanned: 3, matched: 3, oldestAgeMs: expect.any(Number), oldestAt: expect.any(String), reasons: { 'handler-failed': 3 } },
    ]);
  });

  it('filters by the group that dead-lettered, and by topic', async () => {
    const { url, client, name } = await setup(2);
    // A new group on memory:// starts at the topic's retained log: it fails all 3.
    await fillDeadLetters(client, name, 'orders', 'shipping', 1, 3);
    const doc = (await cli(['dlq', 'ls', 'orders', '--group', 'shipping', '--json', '--url', url])).json<DlqLsDocument>();
    expect(doc.deadLetterTopics[0]).toMatchObject({ topic: 'orders-dlq', depth: 5, matched: 3, reasons: { 'handler-failed': 3 } });
    const table = await cli(['dlq', 'ls', 'orders', '--group', 'billing', '--url', url]);
    expect(table.stdout).toMatch(/^TOPIC\s+DEPTH\s+GROUP billing\s+OLDEST\s+REASONS\norders-dlq\s+5\s+2\s+\d+s\s+handler-failed=2\n$/);
  });

  it('exits 2 naming an unknown topic', async () => {
    const { url } = await setup(1);
    const r = await cli(['dlq', 'ls', 'nope', '--url', url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('mqkit: NOT_FOUND: topic "nope-dlq" does not exist\n');
    expect(r.stdout).toBe('');
  });
});

describe('mqkit dlq show', () => {
  it('shows id, attempts, error, headers and payload without removing anything', async () => {
    const { url, name, ids } = await setup(3);
    const r = await cli(['dlq', 'show', 'orders', '--limit', '2', '--json', '--url', url]);
    expect(r.code).toBe(0);
    const doc = r.json<DlqShowDocument>();
    expect(doc).toMatchObject({ adapter: 'memory', topic: 'orders-dlq', depth: 3, read: 'peek' });
    expect(doc.messages).toHaveLength(2);
    expect(doc.messages[0]).toMatchObject({
      id: ids[0],
      key: 'k0',
      reason: 'handler-failed',
      error: 'Error: boom: cannot handle',
      attempts: 2,
      originalTopic: 'orders',
      originalGroup: 'billing',
      payloadPreview: '{"n":0}',
      payloadBytes: 7,
    });
    expect(doc.messages[0]?.headers).toMatchObject({ 'x-app': 'a', 'x-mqkit-dead-letter-reason': 'handler-failed' });
    expect(memoryBroker(name).published('orders-dlq')).toHaveLength(3);
    const again = await cli(['dlq', 'show', 'orders-dlq', '--url', url]);
    expect(again.stdout).toContain('orders-dlq: 3 message(s), showing 3');
    expect(again.stdout).toContain(`#1 id ${ids[0]}`);
    expect(again.stdout).toContain('reason    handler-failed after 2 attempt(s)');
  });

  it('filters by reason', async () => {
    const { url } = await setup(2);
    expect((await cli(['dlq', 'show', 'orders', '--reason', 'decode-failed', '--json', '--url', url])).json<DlqShowDocument>().messages).toEqual([]);
    expect((await cli(['dlq', 'show', 'orders', '--reason', 'handler-failed', '--json', '--url', url])).json<DlqShowDocument>().messages).toHaveLength(2);
  });
});

describe('mqkit dlq replay', () => {
  it('--dry-run lists what would go where and changes nothing', async () => {
    const { url, name, ids } = await setup(2);
    const r = await cli(['dlq', 'replay', 'orders', '--dry-run', '--json', '--url', url]);
    expect(r.code).toBe(0);
    expect(r.json()).toEqual({
      adapter: 'memory',
      topic: 'orders-dlq',
      dryRun: true,
      replayed: 0,
      failed: 0,
      messages: ids.map((id) => ({ id, to: 'orders', status: 'would-replay' })),
    });
    expect(memoryBroker(name).published('orders-dlq')).toHaveLength(2);
  });

  it('republishes to the original topic with the same id, key and headers, then removes them', async () => {
    const { url, name, ids, client } = await setup(3);
    const r = await cli(['dlq', 'replay', 'orders', '--limit', '2', '--json', '--url', url]);
    expect(r.code).toBe(0);
    expect(r.json()).toMatchObject({ replayed: 2, failed: 0 });
    const broker = memoryBroker(name);
    expect(broker.retained('orders-dlq')!.map((m) => m.envelope.id)).toEqual([ids[2]]);
    const again = broker.published('orders').slice(3);
    expect(again.map((e) => [e.id, e.key, e.headers['x-app'], e.headers['x-mqkit-dead-letter-reason']])).toEqual([
      [ids[0], 'k0', 'a', undefined],
      [ids[1], 'k1', 'a', undefined],
    ]);
    // A fixed consumer now gets them.
    const got: string[] = [];
    const sub = await client.subscribe('orders', { group: 'fixed-after', handler: async (d) => void got.push(d.id) });
    await expect.poll(() => got.length).toBeGreaterThanOrEqual(5);
    await sub.close();
    expect(got.filter((id) => id === ids[0])).toHaveLength(2); // the first publish and the replay
  });

  it('replayed twice (a crash between publish and removal), an idempotent() consumer applies each message once', async () => {
    const { url, name, client, ids } = await setup(2);
    const { idempotent, MemoryDedupStore } = await import('@mqkit/core');
    const broker = memoryBroker(name);
    const dead = broker.retained('orders-dlq')!.map((m) => m.envelope);
    const effects: string[] = [];
    const deliveries: string[] = [];
    const sub = await client.subscribe('orders', {
      group: 'billing-fixed',
      middleware: [
        async (d, next) => {
          deliveries.push(d.id);
          await next();
        },
        idempotent(new MemoryDedupStore()),
      ],
      handler: async (d) => void effects.push(d.id),
    });
    await expect.poll(() => effects.length).toBe(2); // the first publishes
    expect((await cli(['dlq', 'replay', 'orders', '--url', url])).code).toBe(0);
    // A replay that crashed after publishing, before removing: the same dead letters are still there.
    for (const e of dead) broker.publish(e);
    expect((await cli(['dlq', 'replay', 'orders', '--url', url])).code).toBe(0);
    await expect.poll(() => deliveries.length).toBe(6); // each delivered three times
    await sub.close();
    expect(effects.sort()).toEqual([...ids].sort());
  });

  it('draws a progress bar on a terminal (stderr), never with --json', async () => {
    const { url } = await setup(2);
    const r = await cli(['dlq', 'replay', 'orders', '--url', url], {}, true);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`\r[###############...............] 1/2 replayed\r[##############################] 2/2 replayed\n`);
    const { url: url2 } = await setup(1);
    expect((await cli(['dlq', 'replay', 'orders', '--json', '--url', url2], {}, true)).stderr).toBe('');
  });

  it('--to a topic, --reason filter, --rate', async () => {
    const { url, name } = await setup(2);
    const started = Date.now();
    const r = await cli(['dlq', 'replay', 'orders', '--to', 'orders-retry', '--reason', 'handler-failed', '--rate', '20/s', '--url', url]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('replayed 2 message(s) from orders-dlq');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45); // 2 messages at 20/s: one 50 ms gap
    expect(memoryBroker(name).published('orders-retry')).toHaveLength(2);
    expect(memoryBroker(name).retained('orders-dlq')).toHaveLength(0);
  });

  it('keeps a message whose republish failed and exits 1', async () => {
    const { url, name, ids } = await setup(2);
    const { MqError } = await import('@mqkit/core');
    memoryBroker(name).injectSendFailures(new MqError('REJECTED', 'refused by policy'));
    const r = await cli(['dlq', 'replay', 'orders', '--json', '--url', url]);
    expect(r.code).toBe(1);
    expect(r.json()).toMatchObject({ replayed: 0, failed: 1, messages: [{ id: ids[0], status: 'failed', error: expect.stringContaining('refused by policy') }] });
    expect(memoryBroker(name).retained('orders-dlq')).toHaveLength(2);
  });

  it('refuses --to the dead-letter topic itself and a bad --rate with exit 2', async () => {
    const { url } = await setup(1);
    expect((await cli(['dlq', 'replay', 'orders', '--to', 'orders-dlq', '--url', url])).code).toBe(2);
    const bad = await cli(['dlq', 'replay', 'orders', '--rate', 'fast', '--url', url]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--rate: expected messages per second');
  });
});

describe('mqkit dlq purge', () => {
  it('needs --yes, then empties the dead-letter topic', async () => {
    const { url, name } = await setup(2);
    const refused = await cli(['dlq', 'purge', 'orders', '--url', url]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('add --yes');
    expect(memoryBroker(name).retained('orders-dlq')).toHaveLength(2);
    const r = await cli(['dlq', 'purge', 'orders', '--yes', '--json', '--url', url]);
    expect(r.code).toBe(0);
    expect(r.json()).toEqual({ adapter: 'memory', topic: 'orders-dlq', purged: 2 });
    expect(memoryBroker(name).retained('orders-dlq')).toHaveLength(0);
  });
});

describe('mqkit lag', () => {
  it('shows backlog per group, ready and in flight', async () => {
    const { url, client } = await memoryUrl();
    clients.push(client);
    await client.declare({ topic: 'events', groups: ['a', 'b'] });
    for (let i = 0; i < 4; i++) await client.publish('events', { i });
    const done: number[] = [];
    const sub = await client.subscribe('events', { group: 'b', handler: async () => void done.push(1) });
    await expect.poll(() => done.length).toBe(4);
    await sub.close();
    const r = await cli(['lag', 'events', '--json', '--url', url]);
    expect(r.code).toBe(0);
    expect(r.json()).toEqual({
      adapter: 'memory',
      groups: [
        { topic: 'events', group: 'a', partition: null, backlog: 4, ready: 4, inFlight: 0, consumers: 0 },
        { topic: 'events', group: 'b', partition: null, backlog: 0, ready: 0, inFlight: 0, consumers: 0 },
      ],
    });
    const table = await cli(['lag', '--group', 'a', '--url', url]);
    expect(table.stdout).toBe('TOPIC   GROUP  BACKLOG  READY  IN FLIGHT  CONSUMERS\nevents  a            4      4          0          0\n');
    expect((await cli(['lag', 'events', '--group', 'zz', '--url', url])).code).toBe(2);
  });
});

describe('mqkit health', () => {
  it('round-trips on memory:// and exits 0', async () => {
    const { url } = await memoryUrl();
    const r = await cli(['health', '--json', '--url', url]);
    expect(r.code).toBe(0);
    expect(r.json()).toMatchObject({ ok: true, adapter: 'memory', topic: 'mqkit-health', roundTripMs: expect.any(Number), error: null });
  });

  it('exits 1 with a one-line reason when the broker is unreachable', async () => {
    const r = await cli(['health', '--json', '--timeout', '3000', '--url', 'redis://127.0.0.1:1']);
    expect(r.code).toBe(1);
    expect(r.json()).toMatchObject({ ok: false, adapter: 'redis', roundTripMs: null, error: { code: expect.stringMatching(/CONNECTION|TIMEOUT/) } });
  });
});

describe('bad input', () => {
  it.each([
    [['dlq', 'ls'], 'mqkit: CONFIG: no broker URL: pass --url <url> or set MQ_URL (e.g. amqp://localhost:5672)\n'],
    [['dlq', 'ls', '--url', 'nats://x'], 'mqkit: CONFIG: unknown URL scheme "nats:"'],
    [['dlq', 'ls', '--url', 'localhost:5672'], 'mqkit: CONFIG: the broker URL must start with a scheme'],
    [['dlq', 'show', 'x', '--limit', '0', '--url', 'memory://'], "mqkit: USAGE: option '--limit <n>' argument '0' is invalid."],
    [['dlq', 'frobnicate'], "mqkit: USAGE: unknown command 'frobnicate'"],
    [['lag', '--bogus'], "mqkit: USAGE: unknown option '--bogus'"],
    [['dlq', 'show'], "mqkit: USAGE: missing required argument 'topic'"],
  ])('%j exits 2 with one line', async (args, message) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.stderr.startsWith(message)).toBe(true);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('--json also puts the error on stdout as a document', async () => {
    const r = await cli(['dlq', 'ls', '--json', '--url', 'nats://x']);
    expect(r.json()).toEqual({ ok: false, error: { code: 'CONFIG', message: expect.stringContaining('unknown URL scheme') } });
  });

  it('--help exits 0', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: mqkit');
  });
});
