import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { migrationSql } from './schema.ts';

describe('migrationSql', () => {
  it('matches the SQL file shipped for the default names (regenerate it when the schema changes)', () => {
    const shipped = readFileSync(new URL('../sql/mqkit-postgres.sql', import.meta.url), 'utf8');
    expect(migrationSql()).toBe(shipped);
  });

  it('uses the configured schema, tables and channel, quoted', () => {
    const sql = migrationSql({ schema: 'app', table: 'orders_outbox', dedupTable: 'orders_seen', channel: 'orders_wake' });
    expect(sql).toContain('"app"."orders_outbox"');
    expect(sql).toContain('"app"."orders_seen"');
    expect(sql).toContain(`EXECUTE FUNCTION "app"."orders_outbox_notify"('orders_wake')`);
    expect(sql).not.toContain('mqkit_outbox');
  });
});
