/**
 * `@mqkit/cli`: the `mqkit` command (`npx mqkit …`) and, for embedding or tests, {@link run}.
 */
export { run } from './run.ts';
export { EXIT, type ExitCode } from './exit-codes.ts';
export type { CliIo } from './io.ts';
export type { ErrorDocument } from './run.ts';
export type { DlqLsDocument, DlqSummary, DlqShowDocument, DlqMessage, DlqReplayDocument, ReplayedMessage, DlqPurgeDocument } from './commands/dlq.ts';
export type { LagDocument, LagRow } from './commands/lag.ts';
export type { HealthReport } from './commands/health.ts';
export type { OutboxStatus, OutboxDeadDocument, OutboxDeadRow, OutboxRetryDocument } from './commands/outbox.ts';
export type { TopologyAction, TopologyDocument, TopologyTopicReport } from './commands/topology.ts';
