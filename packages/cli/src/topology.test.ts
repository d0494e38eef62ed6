import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '@mqkit/core';
import type { TopologyDocument } from './index.ts';
import { cli, memoryUrl } from './cli.test-util.ts';

const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

async function fresh(): Promise<{ url: string; client: Client }> {
  const m = await memoryUrl();
  clients.push(m.client);
  return m;
}

function file(content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'mqkit-topology-')), 'topology.json');
  writeFileSync(path, content);
  return path;
}

const declarations = JSON.stringify([
  { topic: 'orders', groups: ['billing', 'shipping'] },
  { topic: 'invoices', groups: ['audit'], deadLetter: false },
]);

describe('mqkit topology', () => {
  it('plan lists what is missing and creates nothing; apply creates it; verify then passes', async () => {
    const { url, client } = await fresh();
    const path = file(declarations);
    const plan = await cli(['topology', 'plan', path, '--json', '--url', url]);
    expect(plan.code).toBe(0);
    const doc = plan.json<TopologyDocument>();
    expect(doc).toMatchObject({ ok: true, action: 'plan', adapter: 'memory' });
    expect(doc.topics.map((t) => [t.topic, t.missing.map((m) => `${m.kind}:${m.name}`)])).toEqual([
      ['orders', ['topic:orders', 'group:billing', 'group:shipping', 'dead-letter topic:orders-dlq']],
      ['invoices', ['topic:invoices', 'group:audit']],
    ]);
    // nothing created by plan: verify fails (exit 1) and names what is missing
    const verify = await cli(['topology', 'verify', path, '--url', url]);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(/^TOPIC\s+KIND\s+NAME\s+STATUS\n/);
    expect(verify.stdout).toMatch(/orders\s+group\s+billing \(of orders\)\s+missing/);

    const apply = await cli(['topology', 'apply', path, '--json', '--url', url]);
    expect(apply.code).toBe(0);
    const applied = apply.json<TopologyDocument>();
    expect(applied.ok).toBe(true);
    expect(applied.topics.map((t) => [t.topic, t.created?.length, t.missing.length])).toEqual([
      ['orders', 4, 0],
      ['invoices', 2, 0],
    ]);
    await client.verify({ topic: 'orders', groups: ['billing', 'shipping'] }); // really there
    const again = await cli(['topology', 'verify', path, '--url', url]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('everything exists: orders, invoices\n');
    expect((await cli(['topology', 'apply', path, '--url', url])).stdout).toBe('nothing to create: orders, invoices already declared\n');
  });

  it('takes one topic from flags', async () => {
    const { url, client } = await fresh();
    const r = await cli(['topology', 'apply', '--topic', 'payments', '--group', 'ledger', 'fraud', '--no-dead-letter', '--url', url]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/payments\s+group\s+fraud \(of payments\)\s+created/);
    expect(r.stdout).not.toContain('payments-dlq');
    await client.verify({ topic: 'payments', groups: ['ledger', 'fraud'], deadLetter: false });
  });

  it('bad input exits 2 with one line: no file or topic, both, unreadable or non-JSON file, a misspelt field', async () => {
    const { url } = await fresh();
    const cases: Array<[string[], RegExp]> = [
      [['topology', 'plan'], /give a JSON file of declarations or --topic/],
      [['topology', 'plan', file(declarations), '--topic', 'x'], /give a file or flags .*not both \(got topic with /],
      [['topology', 'plan', '/nonexistent/topology.json'], /topology file \/nonexistent\/topology.json: ENOENT/],
      [['topology', 'plan', file('{ nope')], /is not JSON/],
      [['topology', 'plan', file('[]')], /non-empty array/],
      [['topology', 'plan', file('{"topic":"t","groupz":["a"]}')], /^mqkit: CONFIG: .*groupz/],
    ];
    for (const [args, message] of cases) {
      const r = await cli([...args, '--url', url]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
