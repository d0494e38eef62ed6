/**
 * Runs the bench with the mqkit RabbitMQ rows added, until src/registry.ts spreads
 * `mqkitRabbitmqScenarios` into `scenarios` itself:
 *
 *   node --conditions=mqkit-source bench/src/mqkit/run-rabbitmq.ts rabbitmq [--n N] [--reps R]
 */
import { scenarios } from '../registry.ts';
import type { Scenario } from '../types.ts';
import { mqkitRabbitmqScenarios } from './rabbitmq.ts';

const registered = new Set(scenarios.map((s) => `${s.broker}/${s.name}`));
for (const row of mqkitRabbitmqScenarios) {
  if (!registered.has(`${row.broker}/${row.name}`)) scenarios.push(row as Scenario);
}
const { main } = await import('../main.ts');
process.exitCode = await main(process.argv.slice(2));
