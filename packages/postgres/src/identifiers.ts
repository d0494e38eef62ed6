import { configError } from '@mqkit/core/driver';

const PLAIN_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Checks a table, schema or channel name and returns it double-quoted for SQL. Names are
 * restricted to plain identifiers because they end up in DDL, triggers and NOTIFY channels, where
 * parameters cannot be used.
 */
export function quoteIdent(name: string, what = 'identifier'): string {
  if (!PLAIN_NAME.test(name)) {
    throw configError(`${what} "${name}" must match ${PLAIN_NAME.source} (letters, digits, underscore; at most 63)`);
  }
  return `"${name}"`;
}

/** `"schema"."name"`. */
export function qualified(schema: string, name: string): string {
  return `${quoteIdent(schema, 'schema')}.${quoteIdent(name, 'table')}`;
}
