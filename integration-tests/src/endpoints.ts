/**
 * What integration suites call to get broker endpoints. The vitest globalSetup (./global-setup.ts)
 * resolved and checked them before any test file started; these helpers read them via `inject`.
 *
 *   import { requireBroker } from '../src/endpoints.ts';
 *   const { brokers } = requireBroker('kafka');
 *
 * `requireBroker` throws (never skips) when the run did not provide the broker.
 */
import { inject } from 'vitest';
import type { BrokerEndpoints, BrokerName, ResolvedBroker, ResolvedEndpoints } from './brokers.ts';

export * from './brokers.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    mqkitEndpoints: ResolvedEndpoints;
    mqkitRequested: BrokerName[];
  }
}

/** All endpoints resolved for this run (only the requested brokers are present). */
export function endpoints(): ResolvedEndpoints {
  const e = inject('mqkitEndpoints');
  if (!e) {
    throw new Error(
      'mqkit integration: no endpoints were provided: run the suites through `pnpm test:integration` ' +
        '(or vitest with integration-tests/vitest.config.ts, whose globalSetup resolves the brokers).',
    );
  }
  return e;
}

/** The resolved entry (endpoint, where it came from, container id) for one broker. */
export function resolvedBroker<N extends BrokerName>(name: N): ResolvedBroker<N> {
  const r = endpoints()[name];
  if (!r) {
    const requested = inject('mqkitRequested') ?? [];
    throw new Error(
      `mqkit integration: broker "${name}" was not resolved for this run (requested: ${requested.join(', ') || 'none'}). ` +
        `Put the suite under integration-tests/${name}/ or set MQKIT_INTEGRATION_BROKERS to include it.`,
    );
  }
  return r;
}

/** The endpoint of a broker this suite needs; throws when the run has none. */
export function requireBroker<N extends BrokerName>(name: N): BrokerEndpoints[N] {
  return resolvedBroker(name).endpoint;
}
