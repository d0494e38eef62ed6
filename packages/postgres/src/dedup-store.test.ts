import type { Delivery, Settlement } from '@mqkit/core';
import { MqError } from '@mqkit/core';
import { describe, expect, it } from 'vitest';
import { exactlyOnce, PostgresDedupStore } from './dedup-store.ts';
import type { SqlExecutor } from './executor.ts';

/** A pool lending one client that records statements; markProcessed always finds a fresh key. */
function fakePool() {
  const statements: string[] = [];
  const client = {
    query: async (text: string) => {
      statements.push(text.trim().split(/\s+/)[0]!.toUpperCase());
      return { rows: text.includes('RETURNING 1') ? [{}] : [], rowCount: 1 };
    },
    release: () => {},
  };
  return { statements, pool: { connect: async () => client } };
}

function delivery(): Delivery<unknown> & { settle(s: Settlement): void } {
  let settlement: Settlement | undefined;
  return {
    id: 'm1',
    group: 'g',
    get settlement() {
      return settlement;
    },
    settle: (s: Settlement) => void (settlement = s),
  } as unknown as Delivery<unknown> & { settle(s: Settlement): void };
}

const noDb: SqlExecutor = { query: async () => ({ rows: [], rowCount: 0 }) };

describe('exactlyOnce()', () => {
  it('commits the mark with the effect when the handler resolves', async () => {
    const { statements, pool } = fakePool();
    await exactlyOnce(pool, new PostgresDedupStore(noDb), async () => {})(delivery());
    expect(statements).toEqual(['BEGIN', 'INSERT', 'COMMIT']);
  });

  it.each(['nack', 'dead-letter'] as const)('rolls the mark and the effect back when the handler settles with %s', async (how) => {
    const { statements, pool } = fakePool();
    const d = delivery();
    await exactlyOnce(pool, new PostgresDedupStore(noDb), async (m, tx) => {
      await tx.query('UPDATE effects SET n = n + 1');
      (m as typeof d).settle(how);
    })(d);
    expect(statements).toEqual(['BEGIN', 'INSERT', 'UPDATE', 'ROLLBACK']);
  });

  it('validates its options', () => {
    const { pool } = fakePool();
    const store = new PostgresDedupStore(noDb);
    expect(() => exactlyOnce(pool, store, async () => {}, { ttlMs: '7d' } as never)).toThrow(/exactlyOnce\.ttlMs/);
    const err = (() => {
      try {
        exactlyOnce(pool, store, async () => {}, { keyof: () => 'k' } as never);
      } catch (e) {
        return e;
      }
    })();
    expect(MqError.is(err, 'CONFIG')).toBe(true);
    expect(String((err as Error).message)).toContain('keyof');
  });
});

describe('PostgresDedupStore options', () => {
  it.each([
    [{ ttlMs: '7d' }, 'PostgresDedupStore.ttlMs'],
    [{ purgeIntervalMs: -1 }, 'PostgresDedupStore.purgeIntervalMs'],
    [{ purgeBatchSize: 0 }, 'PostgresDedupStore.purgeBatchSize'],
    [{ dedupTable: 'a-b' }, 'PostgresDedupStore.dedupTable'],
    [{ table: 'outbox' }, 'table'],
  ])('%j → CONFIG naming %s', (options, field) => {
    let err: unknown;
    try {
      new PostgresDedupStore(noDb, options as never);
    } catch (e) {
      err = e;
    }
    expect(MqError.is(err, 'CONFIG')).toBe(true);
    expect(String((err as Error).message)).toContain(field);
  });
});

describe('PostgresDedupStore automatic purge', () => {
  it('runs one bounded purge on a write after the interval, never more than one at a time', async () => {
    const deletes: number[] = [];
    let release!: () => void;
    const db: SqlExecutor = {
      query: async (text, values) => {
        if (!/^\s*DELETE/.test(text) || !/LIMIT/.test(text)) return { rows: [{ acquired: true }], rowCount: 1 };
        deletes.push(values?.[0] as number);
        if (deletes.length === 1) await new Promise<void>((r) => (release = r));
        return { rows: [], rowCount: values?.[0] as number }; // always a full batch: the cap stops it
      },
    };
    const store = new PostgresDedupStore(db, { purgeIntervalMs: 1, purgeBatchSize: 10 });
    await new Promise((r) => setTimeout(r, 5));
    await store.begin('k1', 1_000);
    await new Promise((r) => setTimeout(r, 5));
    await store.begin('k2', 1_000); // the first purge is still running: no second one
    expect(deletes).toEqual([10]);
    release();
    await new Promise((r) => setTimeout(r, 50));
    expect(deletes.length).toBe(100); // capped per run
    expect(deletes.every((n) => n === 10)).toBe(true);
  });

  it('is off with purgeIntervalMs: 0', async () => {
    let deletes = 0;
    const db: SqlExecutor = {
      query: async (text) => {
        if (/^\s*DELETE/.test(text)) deletes += 1;
        return { rows: [{ acquired: true }], rowCount: 1 };
      },
    };
    const store = new PostgresDedupStore(db, { purgeIntervalMs: 0 });
    await store.begin('k', 1_000);
    await new Promise((r) => setTimeout(r, 20));
    expect(deletes).toBe(0);
  });
});
