/**
 * Runs the bench with the mqkit RocketMQ rows added, until src/registry.ts spreads
 * `mqkitRocketmqScenarios` into `scenarios` itself:
 *
 *   node --conditions=mqkit-source bench/src/mqkit/run-rocketmq.ts rocketmq [--n N] [--reps R]
 */
import { scenarios } from '../registry.ts';
import type { Scenario } from '../types.ts';
import { mqkitRocketmqScenarios } from './rocketmq.ts';

const registered = new Set(scenarios.map((s) => `${s.broker}/${s.name}`));
for (const row of mqkitRocketmqScenarios) {
  if (!registered.has(`${row.broker}/${row.name}`)) scenarios.push(row as Scenario);
}
const { main } = await import('../main.ts');
process.exitCode = await main(process.argv.slice(2));
