/**
 * Raw amqplib against the real RabbitMQ: confirm channel, durable topic exchange, quorum queue
 * with x-delivery-limit + dead-letter exchange, mandatory returns, persistent confirmed publish,
 * manual ack, nack → DLQ.
 */
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel, ConsumeMessage, GetMessage, Message, Options } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { uniqueName } from '../src/names.ts';
import { sleep, waitFor } from '../src/wait.ts';

const { url } = requireBroker('rabbitmq');
const exchange = uniqueName('raw-amqp-ex');
const dlx = uniqueName('raw-amqp-dlx');
const queue = uniqueName('raw-amqp-q');
const dlq = uniqueName('raw-amqp-dlq');
const DELIVERY_LIMIT = 2;

let conn: ChannelModel;
let ch: ConfirmChannel;

/** Publish and resolve on the broker's confirm (reject on nack). */
function publishConfirmed(routingKey: string, body: string, opts: Options.Publish = {}): Promise<void> {
  return new Promise((res, rej) => {
    ch.publish(exchange, routingKey, Buffer.from(body), { persistent: true, ...opts }, (err) => (err ? rej(err) : res()));
  });
}

/** basic.get until a message arrives (or time runs out). */
async function getOne(q: string, timeoutMs = 10_000): Promise<GetMessage> {
  const c = await conn.createChannel();
  try {
    return await waitFor(`a message on ${q}`, async () => (await c.get(q, { noAck: true })) || undefined, { timeoutMs, intervalMs: 100 });
  } finally {
    await c.close();
  }
}

async function queueDepth(q: string): Promise<number> {
  const c = await conn.createChannel();
  try {
    return (await c.checkQueue(q)).messageCount;
  } finally {
    await c.close();
  }
}

beforeAll(async () => {
  conn = await amqp.connect(url);
  ch = await conn.createConfirmChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  await ch.assertExchange(dlx, 'fanout', { durable: true });
  await ch.assertQueue(dlq, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await ch.bindQueue(dlq, dlx, '');
  await ch.assertQueue(queue, {
    durable: true,
    arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': DELIVERY_LIMIT, 'x-dead-letter-exchange': dlx },
  });
  await ch.bindQueue(queue, exchange, 'orders.*');
});

afterAll(async () => {
  if (!conn) return;
  const c = await conn.createChannel().catch(() => undefined);
  if (c) {
    for (const q of [queue, dlq]) await c.deleteQueue(q).catch(() => {});
    for (const x of [exchange, dlx]) await c.deleteExchange(x).catch(() => {});
  }
  await conn.close().catch(() => {});
});

describe('amqplib raw client', () => {
  it('asserting the quorum queue again with other arguments is refused (the queue really is quorum with a delivery limit)', async () => {
    const c = await conn.createChannel();
    const closed = new Promise<void>((res) => c.once('close', () => res()));
    c.on('error', () => {});
    const err = await c.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'classic' } }).then(
      () => undefined,
      (e: { code?: number }) => e,
    );
    expect(err?.code).toBe(406); // PRECONDITION_FAILED: inequivalent arg 'x-queue-type'
    await closed;
  });

  it('mandatory publish of an unroutable message raises "return" (312 NO_ROUTE) and is still confirmed', async () => {
    const messageId = uniqueName('unroutable');
    const returned = new Promise<Message>((res) => {
      const onReturn = (m: Message) => {
        if (m.properties.messageId === messageId) {
          ch.removeListener('return', onReturn);
          res(m);
        }
      };
      ch.on('return', onReturn);
    });
    await publishConfirmed('nowhere.none', 'lost?', { mandatory: true, messageId });
    const m = await Promise.race([returned, sleep(5_000).then(() => undefined)]);
    expect(m, 'no basic.return for the unroutable mandatory message').toBeDefined();
    // basic.return fields (the typings only declare the delivery fields)
    const fields = m!.fields as unknown as { replyCode: number; routingKey: string };
    expect(fields.replyCode).toBe(312);
    expect(fields.routingKey).toBe('nowhere.none');
    expect(m!.content.toString()).toBe('lost?');
  });

  it('persistent publishes are confirmed; a manual-ack consumer gets them; acked ones are gone, an unacked one comes back redelivered', async () => {
    const bodies = Array.from({ length: 10 }, (_, i) => `order-${i}`);
    await Promise.all(bodies.map((b) => publishConfirmed('orders.created', b, { messageId: b, mandatory: true })));
    expect(await queueDepth(queue)).toBe(10);

    const c = await conn.createChannel();
    await c.prefetch(5);
    const got: ConsumeMessage[] = [];
    const { consumerTag } = await c.consume(
      queue,
      (m) => {
        if (!m) return;
        got.push(m);
        if (m.content.toString() !== 'order-9') c.ack(m); // leave the last one unacked
      },
      { noAck: false },
    );
    await waitFor('10 deliveries', () => got.length >= 10, { timeoutMs: 10_000 });
    expect(got.map((m) => m.content.toString()).sort()).toEqual([...bodies].sort());
    for (const m of got) {
      expect(m.properties.deliveryMode).toBe(2);
      expect(m.fields.redelivered).toBe(false);
      expect(m.fields.routingKey).toBe('orders.created');
    }
    await c.cancel(consumerTag);
    await c.close(); // the unacked delivery returns to the queue

    const again = await getOne(queue);
    expect(again.content.toString()).toBe('order-9');
    expect(again.fields.redelivered).toBe(true);
    expect(await queueDepth(queue)).toBe(0);
  });

  it('nack(requeue=false) dead-letters to the DLX queue with x-death reason "rejected"', async () => {
    await publishConfirmed('orders.poison', 'reject-me', { messageId: 'reject-me' });
    const c = await conn.createChannel();
    const m = await waitFor('the message', async () => (await c.get(queue, { noAck: false })) || undefined, { timeoutMs: 10_000 });
    expect(m.content.toString()).toBe('reject-me');
    c.nack(m, false, false);
    const dead = await getOne(dlq);
    await c.close();
    expect(dead.content.toString()).toBe('reject-me');
    const death = (dead.properties.headers?.['x-death'] as Array<Record<string, unknown>> | undefined)?.[0];
    expect(death?.reason).toBe('rejected');
    expect(death?.queue).toBe(queue);
    expect(await queueDepth(queue)).toBe(0);
  });

  it(`x-delivery-limit ${DELIVERY_LIMIT}: a message requeued over and over is dead-lettered, not redelivered forever`, async () => {
    await publishConfirmed('orders.loop', 'requeue-me', { messageId: 'requeue-me' });
    const c = await conn.createChannel();
    let deliveries = 0;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const m = await c.get(queue, { noAck: false });
      if (m) {
        deliveries++;
        c.nack(m, false, true); // requeue: counts as a delivery attempt on a quorum queue
        if (deliveries > DELIVERY_LIMIT + 3) break;
        continue;
      }
      if ((await queueDepth(dlq)) > 0) break;
      await sleep(100);
    }
    await c.close();
    // attempts allowed: the first delivery plus DELIVERY_LIMIT redeliveries
    expect(deliveries).toBe(DELIVERY_LIMIT + 1);
    const dead = await getOne(dlq);
    expect(dead.content.toString()).toBe('requeue-me');
    const death = (dead.properties.headers?.['x-death'] as Array<Record<string, unknown>> | undefined)?.[0];
    expect(death?.reason).toBe('delivery_limit');
  });
});
