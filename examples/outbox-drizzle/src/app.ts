/** Wiring: the broker client, Drizzle on a pg pool, the outbox and its relay. */
import { connect, type Client } from '@mqkit/core';
import { postgresOutbox, type PostgresOutbox } from '@mqkit/postgres';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { createTables, OUTBOX_TABLE } from './schema.ts';

export interface App {
  client: Client;
  db: NodePgDatabase;
  box: PostgresOutbox;
  stop(): Promise<void>;
}

/**
 * Connects to the broker by URL (its adapter package is found from the scheme), builds Drizzle and
 * the outbox on one pg pool, creates the tables and starts the relay.
 */
export async function startApp(config: { mqUrl: string; databaseUrl: string }): Promise<App> {
  const client = await connect(config.mqUrl, { topology: 'create' });
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 5 });
  pool.on('error', () => {}); // an idle client's lost connection: the next query reports it
  const db = drizzle({ client: pool });
  const box = postgresOutbox(client, { pool, table: OUTBOX_TABLE, dedupTable: `${OUTBOX_TABLE}_processed` });
  try {
    await box.migrate();
    await createTables(db);
  } catch (err) {
    await pool.end();
    await client.close();
    throw err;
  }
  box.relay.start();
  return {
    client,
    db,
    box,
    async stop() {
      await box.close(); // stops the relay; the pool is ours
      await pool.end();
      await client.close();
    },
  };
}
