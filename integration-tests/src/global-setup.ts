/**
 * vitest globalSetup of the integration project: runs once per run in the main vitest process.
 * Decides which brokers this run needs, resolves their endpoints (env → testcontainers → native
 * `.mqkit/endpoints.json`), starts containers lazily for those that need them, checks every
 * requested broker answers (throwing loudly otherwise: nothing is skipped), and hands the
 * endpoints to the test files through `provide('mqkitEndpoints', …)` (read with `endpoints()` /
 * `requireBroker()` from ./endpoints.ts).
 */
import { relative, sep } from 'node:path';
import type { TestProject } from 'vitest/node';
import { BROKERS, type BrokerName, type ResolvedBroker, type ResolvedEndpoints, isBrokerName } from './brokers.ts';
import { type StartedBroker, startBrokerContainer } from './containers.ts';
import { brokersFromEnv, checkReachable, planEndpoints } from './resolve.ts';

async function requestedBrokers(project: TestProject): Promise<{ names: BrokerName[]; why: string }> {
  const fromEnv = brokersFromEnv();
  if (fromEnv) return { names: fromEnv, why: 'MQKIT_INTEGRATION_BROKERS' };
  // Derive from the test files this run will execute (in every project of the config):
  // integration-tests/<broker>/… needs <broker>; a test file outside a broker folder (e.g. a
  // cross-broker suite) needs them all.
  const filters = (project.vitest as unknown as { filenamePattern?: string[] }).filenamePattern;
  const root = project.vitest.config.root;
  const names = new Set<BrokerName>();
  for (const p of project.vitest.projects) {
    const { testFiles } = await p.globTestFiles(filters);
    for (const f of testFiles) {
      const top = relative(root, f).split(sep)[0] ?? '';
      if (isBrokerName(top)) names.add(top);
      else return { names: [...BROKERS], why: `test file ${relative(root, f)} is outside a broker folder` };
    }
  }
  return { names: BROKERS.filter((b) => names.has(b)), why: 'folders of the selected test files' };
}

interface Shared {
  ready: Promise<{ endpoints: ResolvedEndpoints; names: BrokerName[] }>;
  started: StartedBroker[];
  users: number;
}

/**
 * The config has several projects (regular suites, then disruptive ones) and vitest runs the
 * globalSetup once per project, in this same process: resolve and start everything once.
 */
const KEY = Symbol.for('mqkit.integration.globalSetup');
const store = globalThis as unknown as Record<symbol, Shared | undefined>;

async function resolveOnce(project: TestProject, shared: Shared): Promise<{ endpoints: ResolvedEndpoints; names: BrokerName[] }> {
  const { names, why } = await requestedBrokers(project);
  const plan = await planEndpoints(names);
  const resolved: ResolvedBroker[] = await Promise.all(
    plan.map(async (p) => {
      if ('endpoint' in p) return p;
      const s = await startBrokerContainer(p.name, p.tried);
      shared.started.push(s);
      if (p.overrides) Object.assign(s.resolved.endpoint, p.overrides);
      return s.resolved;
    }),
  );
  await checkReachable(resolved);
  const endpoints: ResolvedEndpoints = {};
  for (const r of resolved) (endpoints as Record<string, ResolvedBroker>)[r.name] = r;
  console.log(`[mqkit integration] brokers (${why}): ${resolved.map((r) => `${r.name}=${r.source}`).join(' ') || '(none)'}`);
  return { endpoints, names };
}

async function stopContainers(shared: Shared): Promise<void> {
  if (process.env.MQKIT_KEEP_CONTAINERS === '1') return;
  await Promise.allSettled(shared.started.splice(0).map((s) => s.stop()));
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let shared = store[KEY];
  if (!shared) {
    const fresh: Shared = { ready: undefined as never, started: [], users: 0 };
    fresh.ready = resolveOnce(project, fresh);
    store[KEY] = shared = fresh;
  }
  shared.users++;
  const current = shared;
  const teardown = async () => {
    if (--current.users > 0) return;
    if (store[KEY] === current) store[KEY] = undefined;
    await stopContainers(current);
  };
  try {
    const { endpoints, names } = await current.ready;
    project.provide('mqkitEndpoints', endpoints);
    project.provide('mqkitRequested', names);
  } catch (e) {
    await teardown();
    throw e;
  }
  return teardown;
}
