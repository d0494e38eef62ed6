/**
 * `@mqkit/testing/conformance`: the suite every adapter passes.
 *
 * ```ts
 * // integration-tests/kafka/conformance.test.ts
 * runConformance({ name: 'kafka', capabilities: KAFKA_CAPABILITIES, connect: () => connect(url, { adapters: [kafka()] }) });
 * ```
 */
import { afterAll, describe, it } from 'vitest';
import { DEFAULT_TIMING, type ConformanceHarness } from './harness.ts';
import { scenarios, type Scenario } from './scenarios.ts';
import { runModelConformance, type ModelOptions } from './model.ts';
import { ScenarioContext } from './support.ts';

export { scenarios, type Scenario } from './scenarios.ts';
export { DEFAULT_TIMING, uniqueName, type ConformanceHarness, type ConformanceTiming, type TopicNeeds } from './harness.ts';
export { eventually, pause, Recorder, ScenarioContext } from './support.ts';
export { expectMqError, rejectedMqError, rejection, thrownMqError } from './assertions.ts';
export { TickProbe } from './adversarial-scenarios.ts';
export {
  checkModel,
  describeCase,
  FAST_MEMORY_WORKLOAD,
  modelCase,
  modelWorkload,
  runModelCase,
  runModelConformance,
  type Behaviour,
  type ModelCase,
  type ModelOptions,
  type ModelRegression,
  type ModelWorkload,
} from './model.ts';

/** Why `scenario` cannot run against `harness`, or undefined when it must run. */
export function skipReason(scenario: Scenario, harness: ConformanceHarness): string | undefined {
  if (harness.skip?.[scenario.id] !== undefined) return harness.skip[scenario.id];
  if (scenario.needsTopology && harness.topology === false) return 'the adapter has no Driver.topology (declare/verify)';
  return scenario.unsupported?.(harness.capabilities);
}

/** Runs one scenario with its own context, cleaning up whatever it opened. */
export async function runScenario(scenario: Scenario, harness: ConformanceHarness): Promise<void> {
  const ctx = new ScenarioContext(harness);
  try {
    await scenario.run(ctx);
  } finally {
    await ctx.cleanup();
  }
}

/** Options of {@link runConformance}. */
export interface ConformanceOptions {
  /** Also run the model-based sweep ({@link runModelConformance}) with these options. */
  model?: ModelOptions;
}

/**
 * Registers the conformance scenarios as vitest tests. Scenarios the adapter cannot run (from
 * its capabilities or the harness's skip map) are registered as skipped with the reason in their
 * title, so a report always shows what was not tested.
 */
export function runConformance(harness: ConformanceHarness, options: ConformanceOptions = {}): void {
  if (options.model) runModelConformance(harness, options.model);
  const timing = { ...DEFAULT_TIMING, ...harness.timing };
  const skipped: string[] = [];
  describe(`mqkit conformance: ${harness.name}`, () => {
    for (const scenario of scenarios) {
      const reason = skipReason(scenario, harness);
      if (reason !== undefined) {
        skipped.push(`${scenario.id} (${reason})`);
        it.skip(`[${scenario.id}] ${scenario.title} — skipped: ${reason}`, () => {});
        continue;
      }
      it(`[${scenario.id}] ${scenario.title}`, () => runScenario(scenario, harness), timing.testMs);
    }
    afterAll(() => {
      if (skipped.length > 0) console.info(`[mqkit conformance: ${harness.name}] skipped by capability: ${skipped.join('; ')}`);
    });
  });
}
