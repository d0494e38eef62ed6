#!/usr/bin/env node
// `pnpm test:packaging`: the published packages, checked as a user installs them.
//
//  1. `pnpm pack` every publishable package (its `prepack` builds it) into a temp folder, and
//     read each tarball: LICENSE (the root's), README, CHANGELOG; no tests or test helpers; every
//     shipped source has its built JS and .d.ts and the other way round (no stale or test-only
//     files); no `workspace:` range left; `@mqkit/core` a peer, never a dependency.
//  2. publint (strict) and are-the-types-wrong (ESM-only profile) on every tarball.
//  3. A fresh npm project in os.tmpdir(), outside the workspace, `npm install`s the tarballs (the
//     npm registry serves their third-party dependencies), then
//     (a) a plain ESM .mjs script on Node 22 and Node 24 connects by URL alone (`memory://`: core
//         finds @mqkit/testing from the scheme), publishes and consumes one message, and checks
//         that there is one copy of core (an adapter's error passes `MqError.is`);
//     (b) a TypeScript consumer is type-checked with moduleResolution node16 and bundler.
// Options: --keep (leave the temp folder), --only a,b (skip steps: pack is always done; steps are
// lint, run, types). MQKIT_NODE22 = a folder with Node 22's `node` (default: scripts/toolchain.sh's).
//
// After a passing run the installed project is kept in os.tmpdir() (one per checkout) for:
// `node scripts/packaging-test.mjs --quickstart URL...`: the README quickstart (new topic, publish
// 10, receive each once) from the installed tarballs, one process per URL, connected by the URL
// alone with `topology: 'create'` (the adapter found from the scheme). It reuses the kept project when
// it was packed from the same sources (HEAD plus the uncommitted diff of packages/ and the
// lockfile), else packs and installs again first (about a minute). CI runs the packaging test
// before brokers are up; the integration suite's packaging/packed-quickstart.test.ts runs this
// mode against every real broker afterwards.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';

const root = resolve(import.meta.dirname, '..');
const started = performance.now();
const args = process.argv.slice(2);
const keep = args.includes('--keep');
const onlyArg = args.indexOf('--only');
const only = onlyArg >= 0 ? new Set(args[onlyArg + 1]?.split(',')) : undefined;
const step = (name) => !only || only.has(name);

/** The packages users install (the order is only the report's). */
const PACKAGES = ['core', 'testing', 'kafka', 'rabbitmq', 'rocketmq', 'sqs', 'redis-streams', 'postgres', 'redis', 'cli', 'nestjs'];

const failures = [];
const fail = (msg) => {
  failures.push(msg);
  console.error(`packaging: FAIL ${msg}`);
};
const secs = (from) => `${((performance.now() - from) / 1000).toFixed(1)} s`;
const log = (msg) => console.log(`packaging: ${msg}`);

/**
 * Runs a command; resolves with its output, rejects with the output in the message. A command
 * still running after `timeoutMs` (a hung registry download, say) is killed: CI must not wait on it.
 */
function run(cmd, argv, { timeoutMs = 300_000, ...options } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...options, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...options.env } });
    let out = '';
    const timer = setTimeout(() => {
      out += `\n(killed after ${timeoutMs / 1000} s)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise(out);
      else reject(new Error(`${cmd} ${argv.join(' ')} exited with ${code ?? signal}\n${out}`));
    });
  });
}

/** Runs `work` over `items`, `limit` at a time (the CI machine has 2 cores). */
async function pool(items, limit, work) {
  const queue = [...items];
  await Promise.all(Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length > 0) await work(queue.shift());
  }));
}

function walk(dir, base = dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name), base) : [relative(base, join(dir, e.name))]));
}

/** Packs every package into `tarballs` (one at a time: each prepack runs `tsc -b`, which must not race another on core). */
async function packAll(tarballs) {
  const t = performance.now();
  const packed = {};
  for (const dir of PACKAGES) {
    const before = new Set(readdirSync(tarballs));
    await run('pnpm', ['pack', '--pack-destination', tarballs], { cwd: join(root, 'packages', dir) });
    const made = readdirSync(tarballs).filter((f) => !before.has(f));
    if (made.length !== 1) throw new Error(`pnpm pack in packages/${dir} made ${made.length} tarballs`);
    packed[dir] = join(tarballs, made[0]);
  }
  log(`packed ${PACKAGES.length} packages in ${secs(t)}`);
  return packed;
}

/** A fresh npm project in `app` with the tarballs installed, as a user installs them. */
async function installApp(app, packed) {
  const t0 = performance.now();
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'mqkit-packaging-app', private: true, type: 'module' }, null, 2));
  // @types/* as a TypeScript user has them (pg ships no types; @types/pg is an optional peer).
  const npmInstall = ['install', '--no-audit', '--no-fund', '--loglevel=error', ...Object.values(packed), '@types/node@^24', '@types/pg@^8.11.0'];
  // One more try on failure: the registry is the only thing here that can fail transiently.
  await run('npm', npmInstall, { cwd: app }).catch((err) => {
    log(`npm install failed, trying once more: ${err.message.split('\n').slice(-3).join(' ')}`);
    return run('npm', npmInstall, { cwd: app });
  });
  log(`npm install of the tarballs into ${app}: ${secs(t0)}`);
}

/** Where a passing run leaves its installed project for `--quickstart` (one per checkout, outside it). */
const KEPT_APP = join(tmpdir(), `mqkit-packed-app-${createHash('sha256').update(root).digest('hex').slice(0, 12)}`);
const KEPT_STAMP = 'packed-from.json';

/** What the tarballs are built from: HEAD plus the uncommitted changes under packages/ and the lockfile. */
async function sourceKey() {
  const git = async (...argv) => (await promisify(execFile)('git', argv, { cwd: root, maxBuffer: 256 * 1024 * 1024 })).stdout;
  const hash = createHash('sha256');
  hash.update(await git('rev-parse', 'HEAD'));
  hash.update(await git('diff', 'HEAD', '--', 'packages', 'pnpm-lock.yaml'));
  for (const f of (await git('ls-files', '--others', '--exclude-standard', '--', 'packages')).split('\n').filter(Boolean)) {
    hash.update(f);
    hash.update(readFileSync(join(root, f)));
  }
  return hash.digest('hex');
}

/** Moves the installed project `app` to {@link KEPT_APP}, stamped with the sources it was packed from. */
function keepApp(app, key) {
  rmSync(KEPT_APP, { recursive: true, force: true });
  renameSync(app, KEPT_APP);
  writeFileSync(join(KEPT_APP, KEPT_STAMP), JSON.stringify({ key, at: new Date().toISOString() }));
}

const quickstartAt = args.indexOf('--quickstart');
if (quickstartAt >= 0) {
  const urls = args.slice(quickstartAt + 1).filter((a) => !a.startsWith('--'));
  process.exit(await quickstart(urls));
}

/**
 * `--quickstart URL...`: the README quickstart from the installed tarballs on each URL (the kept
 * project when it matches the sources, else packed and installed anew). Returns the exit code.
 */
async function quickstart(urls) {
  if (urls.length === 0) {
    console.error('packaging: --quickstart needs at least one broker URL');
    return 2;
  }
  const key = await sourceKey();
  const stamp = join(KEPT_APP, KEPT_STAMP);
  const fresh = existsSync(stamp) && JSON.parse(readFileSync(stamp, 'utf8')).key === key;
  if (fresh) log(`quickstart: reusing the project installed from these sources at ${KEPT_APP}`);
  else {
    const from = mkdtempSync(join(tmpdir(), 'mqkit-packaging-'));
    try {
      mkdirSync(join(from, 'tarballs'));
      const packed = await packAll(join(from, 'tarballs'));
      await installApp(join(from, 'app'), packed);
      keepApp(join(from, 'app'), key);
    } catch (err) {
      console.error(`packaging: FAIL quickstart: packing or installing: ${err.message}`);
      return 1;
    } finally {
      rmSync(from, { recursive: true, force: true });
    }
  }
  writeFileSync(join(KEPT_APP, 'quickstart.mjs'), quickstartMjs());
  let failed = 0;
  for (const url of urls) {
    const t0 = performance.now();
    const shown = url.replace(/(\/\/[^:/@]+:)[^@]+@/, '$1***@');
    try {
      const out = await run(process.execPath, ['quickstart.mjs'], { cwd: KEPT_APP, timeoutMs: 120_000, env: { MQ_URL: url } });
      log(`quickstart OK on ${shown}: ${out.trim().split('\n').at(-1)} (${secs(t0)})`);
    } catch (err) {
      failed += 1;
      fail(`quickstart on ${shown}: ${err.message}`);
    }
  }
  log(`quickstart: ${urls.length - failed} of ${urls.length} URL(s) passed`);
  return failed === 0 ? 0 : 1;
}

const work = mkdtempSync(join(tmpdir(), 'mqkit-packaging-'));
const tarballs = join(work, 'tarballs');
mkdirSync(tarballs);
log(`work folder ${work}`);

try {
  // 1. Pack.
  const packed = await packAll(tarballs);

  // Contents of each tarball.
  const license = readFileSync(join(root, 'LICENSE'), 'utf8');
  for (const [dir, tgz] of Object.entries(packed)) {
    const into = join(work, 'unpacked', dir);
    mkdirSync(into, { recursive: true });
    await run('tar', ['-xzf', tgz, '-C', into]);
    const pkgDir = join(into, 'package');
    const files = walk(pkgDir);
    const where = `@mqkit/${dir}`;
    for (const required of ['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json']) {
      if (!files.includes(required)) fail(`${where}: ${required} is not in the tarball`);
    }
    if (files.includes('LICENSE') && readFileSync(join(pkgDir, 'LICENSE'), 'utf8') !== license) fail(`${where}: LICENSE differs from the root LICENSE`);
    for (const f of files) {
      if (/\.test\.|\.test-util\.|tsbuildinfo|(^|\/)(__tests__|fixtures?)\//.test(f)) fail(`${where}: ships test file ${f}`);
    }
    // src/x.ts <-> dist/x.js + dist/x.d.ts: a source without output is test-only or unbuilt; an
    // output without source is stale (its source was deleted or renamed).
    const sources = new Set(files.filter((f) => f.startsWith('src/') && f.endsWith('.ts')).map((f) => f.slice(4, -3)));
    const outputs = new Set(files.filter((f) => f.startsWith('dist/') && f.endsWith('.js')).map((f) => f.slice(5, -3)));
    for (const s of sources) {
      if (!outputs.has(s)) fail(`${where}: src/${s}.ts ships without dist/${s}.js (test-only or not built?)`);
      else if (!files.includes(`dist/${s}.d.ts`)) fail(`${where}: dist/${s}.d.ts missing`);
    }
    for (const o of outputs) if (!sources.has(o)) fail(`${where}: dist/${o}.js has no source in src/ (stale build output?)`);
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
    if (JSON.stringify(pkg).includes('workspace:')) fail(`${where}: package.json still has a workspace: range`);
    if (pkg.sideEffects !== false) fail(`${where}: sideEffects is not false`);
    if (pkg.license !== 'Apache-2.0') fail(`${where}: license is ${pkg.license}`);
    if (!pkg.repository?.url || !pkg.homepage) fail(`${where}: repository or homepage missing`);
    // @mqkit/cli is an application, not a library: `npx mqkit` must run with nothing else installed,
    // so it depends on core and the adapters (whose core peer its own dependency satisfies).
    if (dir !== 'core' && dir !== 'cli') {
      if (pkg.dependencies?.['@mqkit/core']) fail(`${where}: @mqkit/core is a dependency (must be a peer: one copy of core per app)`);
      if (!pkg.peerDependencies?.['@mqkit/core']) fail(`${where}: @mqkit/core is not a peer dependency`);
    }
  }
  log(`checked tarball contents`);

  // 2 and 3 run side by side: the linters read tarballs, npm installs into another folder.
  const lint = async () => {
    if (!step('lint')) return;
    const t0 = performance.now();
    const attw = join(root, 'node_modules', '.bin', 'attw');
    const publint = join(root, 'node_modules', '.bin', 'publint');
    await pool(Object.entries(packed), 2, async ([dir, tgz]) => {
      try {
        const out = await run(publint, ['run', tgz, '--strict']);
        if (!/All good/.test(out)) fail(`publint @mqkit/${dir}:\n${out}`);
      } catch (err) {
        fail(`publint @mqkit/${dir}: ${err.message}`);
      }
      try {
        // ESM only (Node 22.18+): CommonJS `require` of ESM and node10 resolution do not apply.
        await run(attw, [tgz, '--profile', 'esm-only', '--format', 'table-flipped']);
      } catch (err) {
        fail(`attw @mqkit/${dir}: ${err.message}`);
      }
    });
    log(`publint + attw clean on ${PACKAGES.length} tarballs: ${secs(t0)}`);
  };

  const app = join(work, 'app');
  const install = async () => {
    if (!step('run') && !step('types')) return;
    await installApp(app, packed);
  };

  await Promise.all([lint(), install()]);

  if (step('run')) {
    const t0 = performance.now();
    // One copy of core in the whole tree (npm installs a peer once, where every dependent sees it).
    const cores = walk(join(app, 'node_modules')).filter((f) => f.endsWith(join('@mqkit', 'core', 'package.json')));
    if (cores.length !== 1) fail(`${cores.length} copies of @mqkit/core installed: ${cores.join(', ')}`);
    writeFileSync(join(app, 'check.mjs'), checkMjs());
    const node22 = process.env.MQKIT_NODE22 ?? (await promisify(execFile)('bash', ['-c', 'source scripts/toolchain.sh && mqkit_node22_path'], { cwd: root })).stdout.trim();
    for (const node of [join(node22, 'node'), process.execPath]) {
      try {
        const out = await run(node, ['check.mjs'], { cwd: app });
        log(`(a) ${out.trim().split('\n').at(-1)}`);
      } catch (err) {
        fail(`(a) check.mjs on ${node}: ${err.message}`);
      }
    }
    // The CLI as `npx mqkit` runs it from the installed bin, and @mqkit/nestjs with the Nest peers npm installed.
    try {
      const out = await run(join(app, 'node_modules', '.bin', 'mqkit'), ['health', '--url', 'memory://', '--json'], { cwd: app });
      if (!/"ok":\s*true/.test(out)) fail(`(a) mqkit health --json on memory:// said: ${out.trim()}`);
      else log('(a) the installed `mqkit` bin: health on memory:// exits 0');
    } catch (err) {
      fail(`(a) the installed mqkit bin: ${err.message}`);
    }
    try {
      const script = "import('@mqkit/nestjs').then((m) => { if (typeof m.MqkitModule?.forRoot !== 'function' || typeof m.Subscribe !== 'function') throw new Error('exports missing'); console.log('ok'); })";
      await run(process.execPath, ['-e', script], { cwd: app });
      log('(a) @mqkit/nestjs imports with its peers (MqkitModule, Subscribe)');
    } catch (err) {
      fail(`(a) import @mqkit/nestjs: ${err.message}`);
    }
    log(`(a) runtime checks: ${secs(t0)}`);
  }

  if (step('types')) {
    const t0 = performance.now();
    writeFileSync(join(app, 'consumer.ts'), consumerTs());
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const configs = {
      node16: { module: 'node16', moduleResolution: 'node16' },
      bundler: { module: 'esnext', moduleResolution: 'bundler' },
    };
    await pool(Object.entries(configs), 2, async ([name, resolution]) => {
      const compilerOptions = { ...resolution, target: 'es2022', lib: ['es2023'], strict: true, noEmit: true, skipLibCheck: false, types: ['node'] };
      writeFileSync(join(app, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions, files: ['consumer.ts'] }, null, 2));
      // skipLibCheck is off so mqkit's own declarations are checked; errors inside other
      // libraries' declarations (ioredis and rocketmq-client-nodejs import untyped modules) are
      // theirs, counted but not failed on. A user's skipLibCheck (tsc --init's default) hides them.
      const out = await run(process.execPath, [tsc, '-p', `tsconfig.${name}.json`, '--pretty', 'false'], { cwd: app }).catch((err) => err.message);
      const errors = out.split('\n').filter((l) => /error TS\d+/.test(l));
      const theirs = errors.filter((l) => l.startsWith('node_modules/') && !l.startsWith('node_modules/@mqkit/'));
      const ours = errors.filter((l) => !theirs.includes(l));
      if (ours.length > 0) fail(`(b) tsc with moduleResolution ${name}:\n${ours.join('\n')}`);
      else log(`(b) consumer.ts type-checks with moduleResolution ${name} (${theirs.length} error(s) in third-party declarations ignored)`);
    });
    log(`(b) type checks: ${secs(t0)}`);
  }
} catch (err) {
  fail(err.stack ?? String(err));
} finally {
  // A passing install is kept for `--quickstart` (the integration suite runs it once brokers are up).
  if (failures.length === 0 && existsSync(join(work, 'app', 'node_modules'))) {
    try {
      keepApp(join(work, 'app'), await sourceKey());
      log(`installed project kept for --quickstart at ${KEPT_APP}`);
    } catch (err) {
      log(`could not keep the installed project: ${err.message}`);
    }
  }
  if (keep || failures.length > 0) log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

if (failures.length > 0) {
  console.error(`packaging: FAILED (${failures.length} problem(s)) after ${secs(started)}`);
  process.exit(1);
}
log(`OK: ${PACKAGES.length} packages, in ${secs(started)}`);

// What a user writes first: plain ESM, no build step, the adapter found from the URL's scheme.
function checkMjs() {
  return `
import assert from 'node:assert/strict';
import { connect, MqError } from '@mqkit/core';

const mq = await connect('memory://packaging');
let resolveDelivery;
const delivered = new Promise((r) => (resolveDelivery = r));
await mq.subscribe('orders', { group: 'billing', handler: async (msg) => resolveDelivery(msg) });
await mq.publish('orders', { orderId: 'A-1001' }, { id: 'order-created:A-1001', key: 'customer-7' });
const timeout = setTimeout(() => { console.error('no delivery within 10 s'); process.exit(1); }, 10_000);
const msg = await delivered;
clearTimeout(timeout);
assert.deepEqual(msg.payload, { orderId: 'A-1001' });
assert.equal(msg.id, 'order-created:A-1001');
await mq.close();

// One copy of core: an error raised inside @mqkit/testing (its option parsing) is this core's MqError.
const err = await connect('memory://packaging?noSuchOption=1').then(() => undefined, (e) => e);
assert.ok(MqError.is(err, 'CONFIG'), 'an adapter error is an MqError of the app\\'s core: ' + err);

// Every adapter and store imports (ESM, its client included); the adapters have the factory connect() loads.
for (const pkg of ['@mqkit/kafka', '@mqkit/rabbitmq', '@mqkit/rocketmq', '@mqkit/sqs', '@mqkit/redis-streams']) {
  const mod = await import(pkg);
  assert.equal(typeof mod.adapter, 'function', pkg + ' exports adapter()');
}
assert.equal(typeof (await import('@mqkit/postgres')).postgresOutbox, 'function');
assert.equal(typeof (await import('@mqkit/redis')).redisDedupStore, 'function');

// A second scheme found by URL alone: the SQS driver opens no connection until used.
const sqs = await connect('sqs://?region=us-east-1&endpoint=http://127.0.0.1:9&sns=false');
assert.equal(sqs.capabilities.maxMessageBytes, 1024 * 1024);
await sqs.close();

console.log('check.mjs OK on Node ' + process.version + ': memory:// publish + consume, one core, 8 packages import');
`.trimStart();
}

// A TypeScript user's first file: the public types must be real (not any) under both resolutions.
function consumerTs() {
  return `
import { connect, idempotent, MemoryDedupStore, MqError, type Client, type Delivery } from '@mqkit/core';
import type { Adapter, Driver } from '@mqkit/core/driver';
import { memory } from '@mqkit/testing';
import { kafka } from '@mqkit/kafka';
import { rabbitmq } from '@mqkit/rabbitmq';
import { rocketmq } from '@mqkit/rocketmq';
import { sqs, type SqsNative } from '@mqkit/sqs';
import { redisStreams } from '@mqkit/redis-streams';
import { postgresOutbox } from '@mqkit/postgres';
import { redisDedupStore } from '@mqkit/redis';

interface Order {
  orderId: string;
  cents: number;
}

const adapters: Adapter[] = [memory(), kafka(), rabbitmq(), rocketmq(), sqs(), redisStreams()];

export async function main(charge: (order: Order) => Promise<void>): Promise<void> {
  const mq: Client = await connect(process.env.MQ_URL ?? 'memory://', { adapters });
  await mq.subscribe<Order>('orders', {
    group: 'billing',
    retry: { maxAttempts: 5 },
    middleware: [idempotent(new MemoryDedupStore())],
    handler: async (msg: Delivery<Order>) => charge(msg.payload),
  });
  await mq.publish('orders', { orderId: 'A-1001', cents: 500 } satisfies Order, { id: 'order-created:A-1001' });
  try {
    await mq.close();
  } catch (err) {
    if (MqError.is(err, 'TIMEOUT')) {
      const retryable: boolean = err.retryable;
      void retryable;
    }
  }
  // @ts-expect-error the topic is a string: the types are real, not any
  await mq.publish(42, {});
  const native = mq.native as SqsNative | undefined;
  void native;
  const outbox = postgresOutbox(mq, { url: 'postgres://localhost/app' });
  const store = redisDedupStore('redis://localhost:6379');
  void outbox;
  void store;
  const driver: Driver | undefined = undefined;
  void driver;
}
`.trimStart();
}

// The README quickstart as a user runs it from npm: MQ_URL alone, `topology: 'create'`, a new topic,
// 10 published, each received once.
function quickstartMjs() {
  return `
import { connect, idempotent, MemoryDedupStore } from '@mqkit/core';

const url = process.env.MQ_URL;
const topic = \`quickstart-\${Date.now().toString(36)}-\${process.pid}\`;
const mq = await connect(url, { topology: 'create' });
const charged = new Map();
await mq.subscribe(topic, {
  group: 'billing',
  concurrency: 8,
  retry: { maxAttempts: 5 },
  middleware: [idempotent(new MemoryDedupStore())],
  handler: async (msg) => void charged.set(msg.payload.orderId, (charged.get(msg.payload.orderId) ?? 0) + 1),
});
const ids = Array.from({ length: 10 }, (_, n) => \`A-\${1000 + n}\`);
await Promise.all(ids.map((orderId, n) => mq.publish(topic, { orderId }, { id: \`order-created:\${orderId}\`, key: \`customer-\${n % 3}\` })));
const deadline = Date.now() + 60_000;
while (charged.size < ids.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
await mq.close();
const twice = [...charged].filter(([, n]) => n !== 1).map(([id]) => id);
if (charged.size !== ids.length || twice.length > 0) {
  console.error(\`quickstart on \${mq.adapter}: received \${charged.size}/\${ids.length}, more than once: \${twice.join(', ') || 'none'}\`);
  process.exit(1);
}
console.log(\`\${mq.adapter}: 10/10 received, each once (topic \${topic})\`);
`.trimStart();
}
