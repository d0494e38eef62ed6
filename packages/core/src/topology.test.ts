import { memory, memoryBroker, wrapAdapter } from '@mqkit/testing';
import { uniqueName } from '@mqkit/testing/conformance';
import { describe, expect, it } from 'vitest';
import { connect, type ConnectOptions } from './connect.ts';
import { MqError } from './errors.ts';

async function open(options: ConnectOptions = {}) {
  const name = uniqueName('topology');
  const client = await connect(`memory://${name}`, { adapters: [memory()], ...options });
  return { client, name, broker: memoryBroker(name) };
}

const noop = async (): Promise<void> => {};

async function rejection(p: Promise<unknown>): Promise<MqError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MqError);
  return err as MqError;
}

describe('client.declare / client.verify', () => {
  it('verify names each missing topic, group and dead-letter topic and the declare call that creates them', async () => {
    const { client } = await open({ topology: 'none' });
    const err = await rejection(client.verify({ topic: 'orders', groups: ['billing', 'shipping'] }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain('topic "orders" does not exist');
    expect(err.message).toContain('consumer group "billing" of topic "orders" does not exist');
    expect(err.message).toContain('dead-letter topic "orders-dlq" does not exist');
    expect(err.message).toContain("client.declare({ topic: 'orders', groups: ['billing', 'shipping'] })");
    expect(err.message).toContain("topology: 'create'");
    expect(err.details.missing).toHaveLength(4);
    await client.declare({ topic: 'orders', groups: ['billing', 'shipping'] });
    await client.verify({ topic: 'orders', groups: ['billing', 'shipping'] });
    await client.verify({ topic: 'orders', groups: ['billing'], deadLetter: false });
    expect((await rejection(client.verify({ topic: 'orders', groups: ['audit'] }))).message).toContain('consumer group "audit"');
    await client.close();
  });

  it('plan lists what declare would create, changes nothing, and is empty once declared', async () => {
    const { client } = await open({ topology: 'none' });
    const plan = await client.plan({ topic: 'orders', groups: ['billing'] });
    expect(plan.map((m) => `${m.kind} ${m.name}`)).toEqual(['topic orders', 'group billing', 'dead-letter topic orders-dlq']);
    expect(await client.plan({ topic: 'orders', groups: ['billing'] })).toHaveLength(3); // nothing was created
    await client.declare({ topic: 'orders', groups: ['billing'] });
    expect(await client.plan({ topic: 'orders', groups: ['billing'] })).toEqual([]);
    expect((await rejection(client.plan({ topic: 'orders', groupz: [] } as never))).code).toBe('CONFIG');
    await client.close();
  });

  it('the declare call in the error carries ordered and delayed', async () => {
    const { client } = await open({ topology: 'none' });
    const err = await rejection(client.verify({ topic: 'timers', delayed: true, groups: ['g'] }));
    expect(err.message).toContain("client.declare({ topic: 'timers', delayed: true, groups: ['g'] })");
    expect((await rejection(client.verify({ topic: 'payments', transactional: true }))).message).toContain("client.declare({ topic: 'payments', transactional: true })");
    const ordered = await rejection(client.verify({ topic: 'ledger', ordered: true }));
    expect(ordered.message).toContain("client.declare({ topic: 'ledger', ordered: true })");
    await client.close();
  });

  it('a declared group keeps what is published before its first subscriber', async () => {
    const { client, broker } = await open();
    await client.declare({ topic: 'orders', groups: ['billing'] });
    await client.publish('orders', { n: 1 });
    expect(broker.depth('orders', 'billing')).toBe(1);
    await client.close();
  });

  it('checks the declaration with one strict schema: CONFIG naming the field, INVALID_MESSAGE for a bad topic', async () => {
    const { client } = await open();
    const typo = await rejection(client.declare({ topic: 'orders', group: ['billing'] } as never));
    expect(typo.code).toBe('CONFIG');
    expect(typo.message).toContain('group');
    const partitions = await rejection(client.declare({ topic: 'orders', partitions: 0 }));
    expect(partitions.code).toBe('CONFIG');
    expect(partitions.message).toContain('declare.partitions');
    expect((await rejection(client.declare({ topic: 'no spaces' }))).code).toBe('INVALID_MESSAGE');
    expect((await rejection(client.declare({ topic: 'orders', groups: ['billing', { name: 'billing' }] }))).message).toContain('listed twice');
    expect((await rejection(client.declare({ topic: 'orders', groups: [{ name: 'billing', option: {} } as never] }))).code).toBe('CONFIG');
    await client.declare({ topic: 'orders', groups: [{ name: 'billing', options: {} }, 'shipping'] });
    await client.verify({ topic: 'orders', groups: ['billing', 'shipping'] });
    expect((await rejection(client.declare({ topic: 'orders', deadLetter: 'bad name' }))).code).toBe('CONFIG');
    await client.close();
  });

  it('an adapter without a topology step rejects with UNSUPPORTED naming it', async () => {
    const bare = wrapAdapter(memory(), () => ({}));
    const client = await connect(`memory://${uniqueName('bare')}`, {
      adapters: [{ schemes: ['memory'], create: async (url, options, context) => withoutTopology(await bare.create(url, options, context)) }],
    });
    const err = await rejection(client.declare({ topic: 'orders' }));
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.message).toContain('memory');
    await client.close();
  });
});

function withoutTopology<T extends object>(driver: T): T {
  const copy = { ...driver } as T & { topology?: unknown };
  delete copy.topology;
  // Getters and methods of the wrapper are own properties: the spread kept them.
  return copy;
}

describe('the topology connect option', () => {
  it("defaults to 'create' on memory://: subscribe declares its topic, group and dead-letter topic", async () => {
    const { client } = await open();
    expect(client.topology).toBe('create');
    await client.subscribe('orders', { group: 'billing', handler: noop });
    await client.verify({ topic: 'orders', groups: ['billing'] });
    await client.close();
  });

  it("'verify': subscribe to a missing topic or group fails fast with NOT_FOUND naming it; declared, it works", async () => {
    const { client } = await open({ topology: 'verify' });
    const err = await rejection(client.subscribe('orders', { group: 'billing', handler: noop }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toMatch(/topic "orders" does not exist.*consumer group "billing"/);
    expect(err.message).toContain("client.declare({ topic: 'orders', groups: ['billing'] })");
    await client.declare({ topic: 'orders', groups: ['billing'] });
    const sub = await client.subscribe('orders', { group: 'billing', handler: noop });
    await sub.close();
    // A custom dead-letter topic is checked too.
    const dlq = await rejection(client.subscribe('orders', { group: 'billing', deadLetterTopic: 'orders-parked', handler: noop }));
    expect(dlq.message).toContain('dead-letter topic "orders-parked"');
    await client.close();
  });

  it("'none': nothing is declared or checked by mqkit", async () => {
    const { client, broker, name } = await open({ topology: 'none' });
    await client.subscribe('orders', { group: 'billing', handler: noop });
    expect(broker.has('orders-dlq')).toBe(false);
    expect(name).toBeTruthy();
    await client.close();
  });

  it('topics are declared at connect with create, checked with verify (the connect fails naming what is missing)', async () => {
    const name = uniqueName('topology');
    const verify = connect(`memory://${name}`, { adapters: [memory()], topology: 'verify', topics: [{ topic: 'orders', groups: ['billing'] }] });
    const err = await rejection(verify);
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain('topic "orders"');
    const created = await connect(`memory://${name}`, { adapters: [memory()], topology: 'create', topics: [{ topic: 'orders', groups: ['billing'] }] });
    await created.close();
    const verified = await connect(`memory://${name}`, { adapters: [memory()], topology: 'verify', topics: [{ topic: 'orders', groups: ['billing'] }] });
    await verified.close();
  });

  it('rejects a bad mode, and topics without a mode that uses them, with CONFIG', async () => {
    const bad = await rejection(connect('memory://', { adapters: [memory()], topology: 'auto' as never }));
    expect(bad.code).toBe('CONFIG');
    expect(bad.message).toContain('connect.topology');
    const none = await rejection(connect('memory://', { adapters: [memory()], topology: 'none', topics: [{ topic: 'orders' }] }));
    expect(none.code).toBe('CONFIG');
    expect(none.message).toContain('connect.topics');
    const typo = await rejection(connect('memory://', { adapters: [memory()], topology: 'create', topics: [{ topic: 'orders', partition: 3 } as never] }));
    expect(typo.message).toContain('connect.topics.0');
  });
});

describe("'create' mode on an adapter whose sends do not create topics (Kafka, RocketMQ)", () => {
  /** memory:// whose topology says sends create nothing, recording and delaying each declare. */
  function slowDeclaring(declared: string[], fail = false) {
    return wrapAdapter(memory(), (driver) => ({
      topology: {
        capabilities: { partitions: false, retainsForDeclaredGroups: true, createsOnPublish: false },
        declare: async (spec) => {
          declared.push(spec.delayed ? `${spec.topic} (delayed)` : spec.topic);
          await new Promise((r) => setTimeout(r, 30));
          if (fail) throw new MqError('CONFIG', 'no admin access');
          await driver.topology!.declare(spec);
        },
        verify: (spec) => driver.topology!.verify(spec),
      },
    }));
  }

  it('declares a topic once before the first publish to it, and keeps publish order while waiting', async () => {
    const declared: string[] = [];
    const name = uniqueName('declaring');
    const client = await connect(`memory://${name}`, { adapters: [slowDeclaring(declared)], topology: 'create' });
    const first = [client.publish('orders', { n: 1 }, { key: 'k' }), client.publish('orders', { n: 2 }, { key: 'k' }), client.publish('timers', { n: 3 }, { delayMs: 10 })];
    await Promise.all(first);
    await client.publish('orders', { n: 4 }, { key: 'k' });
    expect(declared).toEqual(['orders', 'timers (delayed)']);
    expect(memoryBroker(name).published('orders').map((e) => e.key)).toEqual(['k', 'k', 'k']);
    expect(memoryBroker(name).published('orders').map((e) => (JSON.parse(new TextDecoder().decode(e.body)) as { n: number }).n)).toEqual([1, 2, 4]);
    await client.close();
  });

  it('a batch with a topic still being declared is not overtaken by a later publish to its other topic', async () => {
    const declared: string[] = [];
    const name = uniqueName('declaring');
    const client = await connect(`memory://${name}`, { adapters: [slowDeclaring(declared)], topology: 'create' });
    await client.publish('b', { n: 0 });
    const batch = client.publishBatch([
      { topic: 'a', payload: { n: 1 } },
      { topic: 'b', payload: { n: 2 }, key: 'k' },
    ]);
    const later = client.publish('b', { n: 3 }, { key: 'k' });
    await Promise.all([batch, later]);
    expect(memoryBroker(name).published('b').map((e) => (JSON.parse(new TextDecoder().decode(e.body)) as { n: number }).n)).toEqual([0, 2, 3]);
    await client.close();
  });

  it('a failed declaration is logged once and the message is sent anyway (the send reports what is wrong)', async () => {
    const declared: string[] = [];
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (_: object, msg?: string) => void warnings.push(msg ?? '') };
    const name = uniqueName('declaring');
    const client = await connect(`memory://${name}`, { adapters: [slowDeclaring(declared, true)], topology: 'create', logger });
    await client.publish('orders', { n: 1 });
    await client.publish('orders', { n: 2 });
    expect(declared).toEqual(['orders']);
    expect(warnings).toEqual(['declaring the topic before publishing failed; sending anyway']);
    expect(memoryBroker(name).published('orders')).toHaveLength(2);
    await client.close();
  });

  it("nothing is declared on publish in 'verify' or 'none' mode", async () => {
    for (const topology of ['verify', 'none'] as const) {
      const declared: string[] = [];
      const client = await connect(`memory://${uniqueName('declaring')}`, { adapters: [slowDeclaring(declared)], topology });
      await client.publish('orders', { n: 1 });
      await client.publishBatch([{ topic: 'orders', payload: { n: 2 } }]);
      expect(declared).toEqual([]);
      await client.close();
    }
  });
});
