import { describe, expect, it } from 'vitest';
import { chunkEntries, settleEntries } from './batch-entries.ts';

describe('chunkEntries', () => {
  it('splits by count and bytes, and sends an oversized entry alone', () => {
    const sizes = (list: Array<Array<{ wire: { size: number } }>>) => list.map((c) => c.map((e) => e.wire.size));
    const small = Array.from({ length: 23 }, () => ({ wire: { size: 10 } }));
    expect(sizes(chunkEntries(small)).map((c) => c.length)).toEqual([10, 10, 3]);
    const mixed = [100, 100, 900, 50, 2000, 10].map((size) => ({ wire: { size } }));
    expect(sizes(chunkEntries(mixed, 1000))).toEqual([[100, 100], [900, 50], [2000], [10]]);
  });
});

describe('settleEntries', () => {
  it('maps Successful and Failed by Id, and never confirms a missing entry', () => {
    const receipts: Array<string | undefined> = [];
    const r = settleEntries(
      3,
      [{ Id: '0', MessageId: 'm0' }],
      [{ Id: '2', Code: 'InternalError', SenderFault: false }],
      'op',
      receipts,
    );
    expect(r[0]).toBeUndefined();
    expect(receipts[0]).toBe('m0');
    expect(r[1]).toMatchObject({ code: 'NOT_CONFIRMED', retryable: true });
    expect(r[2]).toMatchObject({ code: 'NOT_CONFIRMED', retryable: true });
    const rejected = settleEntries(1, [], [{ Id: '0', Code: 'InvalidMessageContents', SenderFault: true }], 'op');
    expect(rejected[0]).toMatchObject({ code: 'INVALID_MESSAGE', retryable: false });
  });
});
