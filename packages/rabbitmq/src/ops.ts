/**
 * Operations (`mqkit dlq`, `mqkit lag`) over AMQP 0-9-1, on a connection of their own.
 *
 * A dead-letter topic `D` is the exchange `D` and the quorum queue `D` that keeps every dead
 * letter (names.ts; the `deadLetterQueue` option, on by default). Reading takes messages with
 * basic.get without acking and gives them back by closing the channel: AMQP has no browse, so
 * a read `hold`s (each read counts a delivery in `x-delivery-count`; the queue has no delivery
 * limit, so nothing is lost). Removing acks a message taken by that read.
 *
 * AMQP cannot list queues or a topic's bindings, nor count unacked messages: those come from the
 * management plugin's HTTP API (management.ts) when it answers (the `managementUrl` option, else
 * port 15672 of the AMQP host). With it, `listTopics` lists the topic exchanges, a backlog without
 * a group (or topic) finds the group queues `T.G` bound to each topic, and a group's backlog is
 * ready + unacked. Without it, `listTopics` and a backlog without both names are UNSUPPORTED, and
 * a backlog is the queue's ready count (what AMQP's queue.declare reports).
 */
import type { Channel, ChannelModel, GetMessage } from 'amqplib';
import { MqError, opsUnsupported, type BacklogRow, type DriverOps, type MessageBatch, type OpsAdapter, type OpsCapabilities, type StoredMessage } from '@mqkit/core/driver';
import { openConnection } from './connection.ts';
import { classifyError } from './errors.ts';
import { ManagementApi } from './management.ts';
import { groupQueueName } from './names.ts';
import { parseConnection } from './options.ts';
import { fromDelivery } from './wire.ts';

/** The RabbitMQ adapter's operations, for the same URLs as {@link rabbitmq}. */
export function ops(): OpsAdapter {
  return {
    schemes: ['amqp', 'amqps'],
    async create(url, options) {
      const settings = parseConnection(url, options);
      const api = await ManagementApi.open(settings);
      const connection = await openConnection(settings);
      connection.on('error', () => {}); // surfaces as the next call's failure
      return new RabbitmqOps(connection, api);
    },
  };
}

class RabbitmqOps implements DriverOps {
  readonly name = 'rabbitmq';
  readonly capabilities: OpsCapabilities;
  readonly #connection: ChannelModel;
  /** The management API, when it answered: listing and unacked counts. */
  readonly #api: ManagementApi | undefined;

  constructor(connection: ChannelModel, api: ManagementApi | undefined) {
    this.#connection = connection;
    this.#api = api;
    this.capabilities = { read: 'hold', remove: 'any', listTopics: api !== undefined, listGroups: api !== undefined };
  }

  /** A fresh channel whose failures surface as the failing call's error. */
  async #open(what: string): Promise<Channel> {
    try {
      const ch = await this.#connection.createChannel();
      ch.on('error', () => {});
      return ch;
    } catch (err) {
      throw classifyError(err, what);
    }
  }

  /** A channel per call: a 404 (no such queue) closes the channel it happens on. */
  async #channel<T>(what: string, use: (ch: Channel) => Promise<T>): Promise<T> {
    const ch = await this.#open(what);
    try {
      return await use(ch);
    } catch (err) {
      throw classifyError(err, what);
    } finally {
      await ch.close().catch(() => {});
    }
  }

  async listTopics(): Promise<readonly string[]> {
    if (!this.#api) throw opsUnsupported(this.name, 'list topics', 'AMQP cannot list exchanges or queues: name the topic, or enable the management plugin (managementUrl)');
    return this.#api.topicExchanges();
  }

  async depth(topic: string): Promise<number> {
    return this.#channel(`queue "${topic}"`, async (ch) => (await ch.checkQueue(topic)).messageCount);
  }

  async read(topic: string, limit: number): Promise<MessageBatch> {
    const what = `reading queue "${topic}"`;
    const ch = await this.#open(what);
    const held = new Map<StoredMessage, GetMessage>();
    try {
      for (let i = 0; i < limit; i++) {
        const got = await ch.get(topic, { noAck: false });
        if (got === false) break;
        const { envelope } = fromDelivery(topic, got.content, got.properties, got.fields.redelivered, topic, got.fields.routingKey);
        held.set({ envelope }, got);
      }
    } catch (err) {
      await ch.close().catch(() => {});
      throw classifyError(err, what);
    }
    let released = false;
    return {
      messages: [...held.keys()],
      remove: async (some) => {
        for (const m of some) {
          const got = held.get(m);
          if (!got) throw new MqError('INVALID_MESSAGE', 'remove: a message not read in this batch');
          ch.ack(got);
          held.delete(m);
        }
        // Acks have no reply: a round trip on the channel makes sure they were written and taken.
        try {
          await ch.checkQueue(topic);
        } catch (err) {
          throw classifyError(err, `acking on queue "${topic}"`);
        }
      },
      release: async () => {
        if (released) return;
        released = true;
        // Closing the channel gives every unacked message back to the queue.
        await ch.close().catch(() => {});
      },
    };
  }

  async purge(topic: string): Promise<number> {
    return this.#channel(`purging queue "${topic}"`, async (ch) => {
      await ch.checkQueue(topic);
      return (await ch.purgeQueue(topic)).messageCount;
    });
  }

  async backlog(topic: string | undefined, group: string | undefined): Promise<readonly BacklogRow[]> {
    const api = this.#api;
    if (!api) {
      if (topic === undefined || group === undefined) {
        throw opsUnsupported(this.name, 'list consumer groups', 'AMQP cannot list queues or bindings: name both (mqkit lag <topic> --group <group>), or enable the management plugin (managementUrl)');
      }
      const queue = groupQueueName(topic, group);
      const q = await this.#channel(`group queue "${queue}"`, (ch) => ch.checkQueue(queue));
      return [{ topic, group, backlog: q.messageCount, ready: q.messageCount, consumers: q.consumerCount }];
    }
    const rows: BacklogRow[] = [];
    for (const t of topic === undefined ? await api.topicExchanges() : [topic]) {
      // A group queue is `T.G`, bound to exchange T (names.ts); its retry queues are not bound.
      const groups = group !== undefined ? [group] : (await api.queuesBoundTo(t)).filter((q) => q.startsWith(`${t}.`)).map((q) => q.slice(t.length + 1));
      for (const g of groups) {
        const q = await api.queue(groupQueueName(t, g)).catch((err: unknown) => {
          // a named group must exist; a listed one removed meanwhile is skipped
          if (group === undefined && MqError.is(err, 'NOT_FOUND')) return undefined;
          throw err;
        });
        if (q) rows.push({ topic: t, group: g, backlog: q.ready + q.unacked, ready: q.ready, inFlight: q.unacked, consumers: q.consumers });
      }
    }
    return rows;
  }

  async close(): Promise<void> {
    await this.#connection.close().catch(() => {});
  }
}
