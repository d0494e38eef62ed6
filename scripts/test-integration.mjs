#!/usr/bin/env node
// `pnpm test:integration [NAME...] [-- VITEST_ARGS...]`
//
// Runs the integration vitest project (integration-tests/vitest.config.ts) against real brokers.
//   NAME        restrict to integration-tests/<NAME>/ (kafka rabbitmq rocketmq sqs postgres redis,
//               or another suite folder, which needs every broker); none = every suite;
//               NAME/FILE (e.g. kafka/raw-kafkajs) narrows to matching files
//   -- ARGS     passed to vitest as they are (e.g. -- -t "transaction")
// Before vitest starts, every requested broker's endpoint is resolved (MQKIT_* env vars, else
// testcontainers when Docker is reachable, else .mqkit/endpoints.json from `pnpm brokers up`) and
// checked; an unreachable broker fails the run with what was tried. Exits non-zero on any failed,
// skipped or todo test (except conformance scenarios skipped by capability, which are listed), or
// when no test ran.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const itDir = join(root, 'integration-tests');
const config = join(itDir, 'vitest.config.ts');

const die = (msg, code = 2) => {
  console.error(`test:integration: ${msg}`);
  process.exit(code);
};

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) die(`needs Node >= 24 (this is ${process.version}); run \`source scripts/toolchain.sh && mqkit_toolchain\` first`);
if (!existsSync(join(itDir, 'node_modules'))) die('integration-tests has no node_modules: run `pnpm install` at the repo root');

// integration-tests/src is TypeScript with erasable syntax only: Node 24 runs it as is.
const { BROKERS } = await import(join(itDir, 'src', 'brokers.ts'));
const resolveMod = await import(join(itDir, 'src', 'resolve.ts'));

const argv = process.argv.slice(2);
const dd = argv.indexOf('--');
const ours = dd >= 0 ? argv.slice(0, dd) : argv;
const passthrough = dd >= 0 ? argv.slice(dd + 1) : [];
if (ours.includes('-h') || ours.includes('--help')) {
  console.log(readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1, 12).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}
const unknownFlags = ours.filter((a) => a.startsWith('-'));
if (unknownFlags.length) die(`unknown option(s) ${unknownFlags.join(' ')} (vitest options go after --)`);

/** test files under a folder (recursive, skipping node_modules/dist) */
function testFiles(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const e of readdirSync(dir)) {
    if (e === 'node_modules' || e === 'dist') continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (e.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const all = testFiles(itDir);
const folderOf = (f) => relative(itDir, f).split(/[\\/]/)[0];
// NAME is a broker folder; a path inside one (e.g. kafka/raw-kafkajs) narrows to matching files.
const selectors = [...new Set(ours.map((a) => a.replace(/^integration-tests\//, '').replace(/\/+$/, '')))];
const names = [...new Set(selectors.map((a) => a.split('/')[0]))];
const folders = [...new Set(all.map(folderOf))].filter((f) => !f.endsWith('.test.ts') && f !== 'src');
for (const n of names) {
  if (!all.some((f) => folderOf(f) === n)) {
    die(`no test files under integration-tests/${n}/ (brokers: ${BROKERS.join(', ')}; suite folders: ${folders.join(', ')})`);
  }
}
for (const sel of selectors) {
  if (sel.includes('/') && !all.some((f) => relative(itDir, f).startsWith(sel))) die(`no test file matches integration-tests/${sel}`);
}
if (all.length === 0) die('no test files under integration-tests/', 1);

// The brokers this run needs: the named ones, else the folders of all suites (a suite outside a
// broker folder, e.g. a cross-broker conformance suite, needs them all).
// A folder that is not a broker's (e.g. outbox/) may use any of them: it asks for all.
// Adapter suites named after their package rather than their broker say which broker they use.
const FOLDER_BROKER = { 'redis-streams': 'redis' };
const wanted = (names.length ? names : [...new Set(all.map(folderOf))]).map((f) => FOLDER_BROKER[f] ?? f);
const brokers = wanted.every((f) => BROKERS.includes(f)) ? BROKERS.filter((b) => wanted.includes(b)) : [...BROKERS];

// ---- broker check before vitest starts -------------------------------------------------------
console.log(`test:integration: brokers ${brokers.join(', ')}`);
try {
  const plan = await resolveMod.planEndpoints(brokers);
  const ready = plan.filter((p) => 'endpoint' in p);
  for (const p of plan) {
    const where = 'endpoint' in p ? JSON.stringify(p.endpoint).replace(/(\/\/[^:/@"]+:)[^@"]+@/g, '$1***@') : '(started by the vitest globalSetup)';
    console.log(`  ${p.name.padEnd(9)} ${p.source.padEnd(14)} ${where}`);
  }
  await resolveMod.checkReachable(ready);
} catch (e) {
  console.error(`\n${e instanceof Error ? e.message : String(e)}\n`);
  console.error('test:integration: FAILED before running tests');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

// ---- vitest ----------------------------------------------------------------------------------
const require = createRequire(join(itDir, 'package.json'));
const vitestBin = require.resolve('vitest/vitest.mjs');
const tmp = mkdtempSync(join(tmpdir(), 'mqkit-it-'));
const jsonOut = join(tmp, 'results.json');
const filters = selectors.map((sel) => (sel.includes('/') ? join(itDir, sel) : join(itDir, sel) + '/'));
const args = [
  vitestBin,
  'run',
  '--config',
  config,
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${jsonOut}`,
  ...filters,
  ...passthrough,
];
const child = spawn(process.execPath, args, {
  cwd: itDir,
  stdio: 'inherit',
  env: { ...process.env, MQKIT_INTEGRATION_BROKERS: brokers.join(',') },
});
const forward = (sig) => () => child.kill(sig);
process.on('SIGINT', forward('SIGINT'));
process.on('SIGTERM', forward('SIGTERM'));
const code = await new Promise((res) => child.on('exit', (c, sig) => res(c ?? (sig ? 1 : 0))));

// ---- our own verdict: nothing skipped, something ran ----------------------------------------
let report;
try {
  report = JSON.parse(readFileSync(jsonOut, 'utf8'));
} catch {
  report = undefined;
}
rmSync(tmp, { recursive: true, force: true });

if (!report) {
  console.error(`test:integration: vitest wrote no results (exit code ${code})`);
  console.error('0 passed, 1 failed');
  process.exit(code || 1);
}
const problems = [];
// The conformance suite registers a scenario an adapter cannot run (ruled out by its capabilities,
// or named in its harness's skip map) as skipped, with the reason in its title: the only skip
// allowed here, and every one is listed.
const CAPABILITY_SKIP = /^\[[a-z0-9-]+\] .* — skipped: ./;
const capabilitySkips = [];
let passed = 0;
let failed = 0;
for (const file of report.testResults ?? []) {
  const rel = relative(root, file.name);
  if (file.status === 'failed' && (file.assertionResults ?? []).length === 0) {
    failed++;
    problems.push(`FAILED FILE ${rel}: ${String(file.message ?? '').split('\n')[0]}`);
  }
  for (const t of file.assertionResults ?? []) {
    if (t.status === 'passed') passed++;
    else if (t.status === 'failed') failed++;
    else if (t.status === 'skipped' && CAPABILITY_SKIP.test(t.title ?? '')) capabilitySkips.push(`${rel} > ${t.title}`);
    else problems.push(`${t.status.toUpperCase()} ${rel} > ${t.fullName ?? t.title}`);
  }
}
let skipped = problems.filter((p) => !p.startsWith('FAILED FILE')).length;
// Tests filtered out by an explicit -t/--testNamePattern are reported, not failed: the user asked.
const nameFilter = passthrough.some((a) => a === '-t' || a.startsWith('--testNamePattern') || a.startsWith('-t='));
if (skipped && nameFilter) {
  console.log(`test:integration: ${skipped} test(s) not run because of the -t filter`);
  problems.splice(0, problems.length, ...problems.filter((p) => p.startsWith('FAILED FILE')));
  skipped = 0;
}
if (skipped) problems.unshift(`${skipped} test(s) did not run: integration suites must not skip, todo or filter tests away`);
if (passed + failed === 0) problems.push('no test ran');
if (problems.length) for (const p of problems) console.error(`test:integration: ${p}`);
for (const s of capabilitySkips) console.log(`test:integration: conformance scenario not applicable: ${s}`);
// vitest exits 0 with only skips; with a capability skip its exit code is still 0.
const ok = code === 0 && problems.length === 0;
console.log(`${ok ? 'test:integration: OK' : 'test:integration: FAILED'} (${brokers.join(', ')})`);
console.log(`${passed} passed, ${failed + (ok ? 0 : skipped)} failed, ${capabilitySkips.length} skipped`);
process.exit(ok ? 0 : code || 1);
