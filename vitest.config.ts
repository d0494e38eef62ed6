import { defineConfig } from 'vitest/config';
import { sharedResolve } from './vitest.shared.ts';

/** `pnpm test`: unit tests and the conformance suite on memory://; no broker needed. */
export default defineConfig({
  ...sharedResolve,
  test: {
    include: ['packages/*/src/**/*.test.ts', 'examples/*/src/**/*.test.ts', 'bench/src/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
