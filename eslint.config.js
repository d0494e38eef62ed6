// @ts-check
// ESLint for the whole repo (`pnpm lint`), type-aware through typescript-eslint.
//
// Type information comes from tsconfig.check.json, the one program `pnpm typecheck` already
// checks every source, test, example, integration and bench file with. Not `projectService`: it
// gives each file the nearest tsconfig.json, and the package tsconfigs exclude *.test.ts (they
// build dist/), so half the files would land in the default project, which takes neither `**`
// globs nor more than a handful of files. A new folder of TypeScript gets linted (and type-checked)
// once tsconfig.check.json includes it.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Tests, and the vitest suites packages/testing ships (conformance, drivertest). */
const TEST_FILES = [
  '**/*.test.ts',
  '**/*.test-util.ts',
  'integration-tests/**/*.ts',
  'packages/testing/src/conformance/**/*.ts',
  'packages/testing/src/drivertest/**/*.ts',
];

export default defineConfig(
  globalIgnores(['**/dist/', '**/node_modules/', '.tools/', '.mqkit/', 'coverage/', 'bench/scratch/', 'bench/results/']),
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        // The NestJS package and example need decorator settings tsconfig.check.json does not
        // have: their own check programs (tests and nestjs integration suites included).
        project: ['./tsconfig.check.json', './packages/nestjs/tsconfig.test.json', './examples/nestjs-app/tsconfig.test.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // From recommendedTypeChecked, named here because a messaging library lives or dies by them:
      // a promise nobody awaits or catches is a lost publish/ack or an unhandled rejection. `void`
      // marks a deliberate fire-and-forget whose promise cannot reject (it catches inside).
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // Not recommended by default: `return promise` inside try/catch/finally skips the catch.
      '@typescript-eslint/return-await': ['error', 'error-handling-correctness-only'],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
      // A class imported only as a type is imported as one (verbatimModuleSyntax already refuses
      // an interface imported as a value), `import()` types included. Inline, like the codebase.
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // Off: an `async` method without `await` is how this code implements Promise-returning
      // contracts (Driver, DriverReceiver, DedupStore, OutboxStore, the memory broker): a
      // synchronous throw (a zod option error, an MqError) becomes a rejection, which is what the
      // callers and the conformance suite handle. Dropping `async` to please the rule would turn
      // those into synchronous throws.
      '@typescript-eslint/require-await': 'off',
      // Rejecting with what was caught, or with an AbortSignal's reason, passes the original on;
      // only a rejection with a value known not to be an Error is a mistake.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
    },
  },
  {
    files: TEST_FILES,
    rules: {
      // Tests pass methods without calling them (`expect(driver.receiver).toBeTypeOf('function')`,
      // `vi.spyOn`, asserting an optional method is absent); nothing is called unbound.
      '@typescript-eslint/unbound-method': 'off',
      // vitest's asymmetric matchers (`expect.stringContaining`, `expect.any`) are typed `any` so
      // they fit any expected shape; assigning them into an expected object is their purpose.
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
);
