import { describe, expect, it } from 'vitest';
import { MqError, silentLogger } from '@mqkit/core/driver';
import { memoryBroker } from './broker.ts';
import { ops } from './ops.ts';

const env = (id: string, topic = 't-dlq') => ({ id, topic, headers: {}, body: new Uint8Array([1]), timestamp: 1 });

describe('memory ops', () => {
  it('reads without consuming, removes only what it is given, keeps messages a consumer holds', async () => {
    const broker = memoryBroker('ops-test-1');
    broker.declare('t-dlq', ['g']);
    for (const id of ['a', 'b', 'c']) broker.publish(env(id));
    const o = await ops().create('memory://ops-test-1', {}, { logger: silentLogger });
    expect(o.capabilities).toEqual({ read: 'peek', remove: 'any', listTopics: true, listGroups: true });
    expect(await o.depth('t-dlq')).toBe(3);
    const batch = await o.read('t-dlq', 2);
    expect(batch.messages.map((m) => m.envelope.id)).toEqual(['a', 'b']);
    await batch.remove([batch.messages[1]!]);
    await batch.release();
    expect(broker.published('t-dlq').map((e) => e.id)).toEqual(['a', 'c']);
    expect(broker.depth('t-dlq', 'g')).toBe(2);
    expect(await o.backlog('t-dlq', undefined)).toEqual([{ topic: 't-dlq', group: 'g', backlog: 2, ready: 2, inFlight: 0, consumers: 0 }]);
    await expect(batch.remove([{ envelope: env('zz') }])).rejects.toThrow(MqError);
    expect(await o.purge('t-dlq')).toBe(2);
    expect(await o.depth('t-dlq')).toBe(0);
  });

  it('NOT_FOUND for a missing topic or group', async () => {
    const o = await ops().create('memory://ops-test-2', {}, { logger: silentLogger });
    await expect(o.depth('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(o.read('nope', 1)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    memoryBroker('ops-test-2').declare('t', ['g']);
    await expect(o.backlog('t', 'other')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(o.backlog('missing', undefined)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
