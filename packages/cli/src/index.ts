/**
 * `@mqkit/cli`: the `mqkit` command (`npx mqkit …`) and, for embedding or tests, {@link run}.
 */
export { run } from './run.ts';
export { EXIT, type ExitCode } from './exit-codes.ts';
export type { CliIo } from './io.ts';
export type { DlqSummary, DlqMessage, ReplayedMessage } from './commands/dlq.ts';
export type { LagRow } from './commands/lag.ts';
export type { HealthReport } from './commands/health.ts';
export type { OutboxStatus, OutboxDeadRow } from './commands/outbox.ts';
