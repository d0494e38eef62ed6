/**
 * The one thing the stores need from a database connection: run a parameterised statement.
 * A `pg` `Client`, `PoolClient` or `Pool` fits as it is; a query builder's transaction fits
 * through a three-line wrapper (see the README for Kysely and Drizzle).
 */
export interface SqlExecutor {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount?: number | null }>;
}

/** Runs a statement and types its rows (the executor's rows are unknown by design). */
export async function queryRows<R>(executor: SqlExecutor, text: string, values?: unknown[]): Promise<R[]> {
  const result = await executor.query(text, values);
  return result.rows as R[];
}
