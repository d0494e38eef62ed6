/**
 * The model-based conformance sweep on memory://: ≥ 200 generated cases per `pnpm test`, with
 * fast timings. A failure prints its seed, path and the one-line command that replays it:
 * `MQKIT_MODEL_SEED=<seed> MQKIT_MODEL_PATH=<path> npx vitest run packages/testing/src/conformance/model.test.ts`.
 */
import { connect, type Logger } from '@mqkit/core';
import { memory, memoryCapabilities } from '../index.ts';
import { uniqueName } from './harness.ts';
import { FAST_MEMORY_WORKLOAD, runModelConformance, type ModelRegression } from './model.ts';

const broker = uniqueName('model');

/** Seeds that once failed on memory, kept as regression cases (seed + fast-check path of the shrunk case). */
const REGRESSIONS: ModelRegression[] = [];

/** The last warnings and errors the clients logged, shown with a failure. */
const logged: string[] = [];
const note = (level: string) => (obj: object, msg?: string): void => {
  const { err, id } = obj as { err?: Error; id?: string };
  logged.push(`${new Date().toISOString()} ${level} ${msg ?? ''}${id ? ` id=${id}` : ''}${err ? `: ${err.message}` : ''}`);
  if (logged.length > 500) logged.splice(0, 250);
};
const logger: Logger = { debug: () => {}, info: () => {}, warn: note('warn'), error: note('error') };

runModelConformance(
  {
    name: 'memory',
    capabilities: memoryCapabilities(),
    connect: () => connect(`memory://${broker}`, { adapters: [memory()], logger }),
  },
  { runs: 240, parallel: 8, shrink: true, workload: FAST_MEMORY_WORKLOAD, regressions: REGRESSIONS, diagnostics: (runId) => logged.filter((l) => runId !== '' && l.includes(`model-${runId}-`)) },
);
