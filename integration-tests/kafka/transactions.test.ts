/**
 * Native Kafka transactions through mqkit: atomic multi-topic publish, and consume-transform-
 * produce with the consumed offset committed inside the transaction (read-committed consumers).
 */
import { bytesCodec } from '@mqkit/core';
import type { KafkaNative } from '@mqkit/kafka';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueGroup } from '../src/names.ts';
import { waitFor } from '../src/wait.ts';
import { closeAll, createTopic, openKafka } from './harness.ts';

afterAll(closeAll);

describe('kafka transactions', () => {
  it('publishes to two topics atomically; an aborted transaction is never seen', async () => {
    const client = await openKafka();
    const [a, b] = await Promise.all([createTopic('tx-a'), createTopic('tx-b')]);
    const seen: string[] = [];
    for (const topic of [a, b]) {
      await client.subscribe<{ n: string }>(topic, { group: uniqueGroup('tx'), handler: (d) => void seen.push(`${topic === a ? 'a' : 'b'}:${d.payload.n}`) });
    }
    await client.transaction(async (tx) => {
      await tx.publish(a, { n: 'one' });
      await tx.publish(b, { n: 'one' });
    });
    await expect(
      client.transaction(async (tx) => {
        await tx.publish(a, { n: 'two' });
        await tx.publish(b, { n: 'two' });
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    await waitFor('both committed messages', () => seen.length >= 2, { timeoutMs: 20_000 });
    await new Promise((r) => setTimeout(r, 1_500));
    expect(seen.sort()).toEqual(['a:one', 'b:one']);
  });

  it('consume-transform-produce: output and consumed offset commit together', async () => {
    const client = await openKafka();
    const native = client.native as KafkaNative;
    const [input, output] = await Promise.all([createTopic('ctp-in'), createTopic('ctp-out')]);
    const group = uniqueGroup('ctp');
    const outputs: string[] = [];
    await client.subscribe<string>(output, { group: uniqueGroup('ctp-read'), codec: bytesCodec as never, handler: (d) => void outputs.push(d.id) });
    let transformed = 0;
    const sub = await client.subscribe<{ n: number }>(input, {
      group,
      concurrency: 1,
      handler: async (d) => {
        const tx = await native.beginTransaction();
        try {
          await tx.send([client.prepare(output, { doubled: d.payload.n * 2 }, { id: `${d.id}:out`, key: d.key })]);
          const offsets = native.transactionOffsets(d);
          expect(offsets).toBeDefined();
          await tx.sendOffsets(offsets!.groupId, offsets!.offsets);
          await tx.commit();
        } catch (err) {
          await tx.abort().catch(() => {});
          throw err;
        }
        transformed += 1;
      },
    });
    const ids = (await Promise.all(Array.from({ length: 20 }, (_, n) => client.publish(input, { n }, { key: `k${n % 4}` })))).map((r) => `${r.id}:out`);
    await waitFor('20 outputs', () => new Set(outputs).size >= 20, { timeoutMs: 30_000 });
    expect(new Set(outputs)).toEqual(new Set(ids));
    expect(transformed).toBe(20);
    // The offsets were committed by the transactions: a new member of the group gets nothing again.
    await sub.close();
    const again: string[] = [];
    const other = await openKafka();
    await other.subscribe(input, { group, handler: (d) => void again.push(d.id) });
    await new Promise((r) => setTimeout(r, 3_000));
    expect(again).toEqual([]);
  });
});
