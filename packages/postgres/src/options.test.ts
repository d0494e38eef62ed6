import { MqError } from '@mqkit/core';
import { describe, expect, it } from 'vitest';
import { quoteIdent } from './identifiers.ts';
import { parseOutboxOptions, parseTableOptions, pgConnectionString } from './options.ts';

describe('outbox options', () => {
  it('has documented defaults', () => {
    const o = parseOutboxOptions();
    expect(o).toMatchObject({
      schema: 'public',
      table: 'mqkit_outbox',
      dedupTable: 'mqkit_processed',
      onPublished: 'mark',
      retentionMs: 3_600_000,
      cleanupBatchSize: 5_000,
      listen: true,
    });
    expect(o.relayId).toMatch(/^relay-/);
    expect(o.channel).toBeUndefined();
  });

  it('reads its own query parameters from the URL, explicit options winning', () => {
    const o = parseOutboxOptions({ retentionMs: 5 }, 'postgres://u:p@h/db?table=orders_outbox&retentionMs=9&listen=false&sslmode=disable');
    expect(o).toMatchObject({ table: 'orders_outbox', retentionMs: 5, listen: false });
  });

  it('rejects unsafe identifiers with CONFIG, naming the option but not the password', () => {
    let err: unknown;
    try {
      parseOutboxOptions({}, 'postgres://u:hunter2@h/db?table=x;drop');
    } catch (e) {
      err = e;
    }
    expect(MqError.is(err, 'CONFIG')).toBe(true);
    expect((err as Error).message).toContain('table');
    expect((err as Error).message).not.toContain('hunter2');
    expect(() => parseTableOptions({ schema: 'a"b' })).toThrow(MqError);
    expect(() => quoteIdent('x y')).toThrow(/must match/);
    expect(quoteIdent('orders_1')).toBe('"orders_1"');
  });

  it('hands pg the URL without mqkit parameters', () => {
    expect(pgConnectionString('postgres://u:p@h:5432/db?table=t&sslmode=require&onPublished=delete')).toBe(
      'postgres://u:p@h:5432/db?sslmode=require',
    );
  });
});
