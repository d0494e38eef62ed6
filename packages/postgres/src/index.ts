/**
 * `@mqkit/postgres`: the transactional outbox and an exactly-once dedup store on PostgreSQL
 * (node-postgres). See the README for the table layout, the relay's guarantees and examples.
 */
export { postgresOutbox, type PostgresOutbox, type PostgresOutboxSetup } from './postgres-outbox.ts';
export { PostgresOutboxStore, type OutboxMetrics, type PostgresOutboxStoreOptions } from './outbox-store.ts';
export {
  PostgresDedupStore,
  exactlyOnce,
  dedupKey,
  type ClientSource,
  type ExactlyOnceOptions,
  type PostgresDedupOptions,
  type TransactionalHandler,
} from './dedup-store.ts';
export { migrate, migrationSql } from './schema.ts';
export { queryRows, type SqlExecutor } from './executor.ts';
export { classifyPgError, toPgMqError } from './errors.ts';
export {
  parseOutboxOptions,
  parseTableOptions,
  pgConnectionString,
  type PostgresOutboxOptions,
  type TableOptions,
} from './options.ts';
