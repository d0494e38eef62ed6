/**
 * Where the CLI writes and what it reads from its environment: `process` in the bin, buffers in
 * tests (the commands run in-process there, so `memory://` works).
 */

/** The CLI's outside world. */
export interface CliIo {
  /** Results: tables, or one JSON document with `--json`. */
  stdout(text: string): void;
  /** Errors (one line) and progress. */
  stderr(text: string): void;
  /** Environment (`MQ_URL`, `DATABASE_URL`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Progress is drawn only on a terminal. @default false */
  readonly progress?: boolean;
}

/** {@link CliIo} of the running process. */
export function processIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    progress: process.stderr.isTTY === true,
  };
}
