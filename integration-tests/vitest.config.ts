import { defineConfig } from 'vitest/config';

/**
 * The integration suites: real brokers only. Run them with `pnpm test:integration [broker…]`
 * (scripts/test-integration.mjs), which checks the brokers first and fails on skipped tests.
 *
 * Two projects share the brokers:
 *  - `integration`: ordinary suites, files in parallel (each uses its own topics/queues/groups);
 *  - `integration-disruptive`: suites that kill, restart or cut off a shared broker (file names
 *    containing fault, crash, recovery or restart). They run after every ordinary suite has
 *    finished (sequence.groupOrder), one file at a time, so they never pull a broker away from
 *    another suite.
 * The Kafka suites run once per client library (integration-tests/kafka/harness.ts reads
 * MQKIT_KAFKA_CLIENT): `integration-kafka` / `integration-disruptive` on kafkajs, and the
 * `…-kafka-platformatic` projects on @platformatic/kafka (disruptive ones after all the others).
 */
export const DISRUPTIVE = ['**/*fault*.test.ts', '**/*crash*.test.ts', '**/*recovery*.test.ts', '**/*restart*.test.ts'];
const IGNORED = ['**/node_modules/**', '**/dist/**'];
const KAFKA = ['kafka/**/*.test.ts'];
const KAFKA_DISRUPTIVE = DISRUPTIVE.map((p) => p.replace('**/', 'kafka/**/'));

// Resolve workspace packages (@mqkit/*) to their TypeScript sources, like tsconfig's customConditions.
const conditions = ['mqkit-source', 'node', 'development|production'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    root: import.meta.dirname,
    environment: 'node',
    pool: 'forks',
    // Suites mostly wait on brokers: run several files at once even on a 2-core machine.
    maxWorkers: 4,
    minWorkers: 1,
    globalSetup: ['./src/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 240_000,
    teardownTimeout: 60_000,
    // A `.only` left in a suite would silently skip the rest: refuse it.
    allowOnly: false,
    passWithNoTests: false,
    // Real brokers: keep failures loud, do not retry them away.
    retry: 0,
    projects: [
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['**/*.test.ts'],
          exclude: [...IGNORED, ...DISRUPTIVE, ...KAFKA],
          sequence: { groupOrder: 0 },
        },
      },
      ...(['kafkajs', 'platformatic'] as const).map((client) => ({
        extends: true as const,
        test: {
          name: client === 'kafkajs' ? 'integration-kafka' : 'integration-kafka-platformatic',
          include: KAFKA,
          // raw-kafkajs measures kafkajs itself: whichever the adapter's client, once is enough.
          exclude: [...IGNORED, ...DISRUPTIVE, ...(client === 'kafkajs' ? [] : ['kafka/raw-*.test.ts'])],
          env: { MQKIT_KAFKA_CLIENT: client },
          sequence: { groupOrder: 0 },
        },
      })),
      {
        extends: true,
        test: {
          name: 'integration-disruptive',
          include: DISRUPTIVE,
          exclude: IGNORED,
          env: { MQKIT_KAFKA_CLIENT: 'kafkajs' },
          sequence: { groupOrder: 1 },
          poolOptions: { forks: { singleFork: true } },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration-disruptive-kafka-platformatic',
          include: KAFKA_DISRUPTIVE,
          exclude: IGNORED,
          env: { MQKIT_KAFKA_CLIENT: 'platformatic' },
          // After the kafkajs run of the same suites: one disruptive file at a time overall.
          sequence: { groupOrder: 2 },
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
