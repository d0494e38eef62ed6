/**
 * Operations (`mqkit dlq`, `mqkit lag`) on `memory://`: a topic's retained log is its
 * dead-letter store (read without consuming), a group's backlog is its unacked queue.
 */
import { MqError, type BacklogRow, type DriverOps, type Envelope, type MessageBatch, type OpsAdapter, type StoredMessage } from '@mqkit/core/driver';
import { copy, memoryBroker, type MemoryBroker } from './broker.ts';

/** The memory adapter's operations: same URL as {@link memory} (`memory://name`). */
export function ops(): OpsAdapter {
  return {
    schemes: ['memory'],
    async create(url) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch (err) {
        throw new MqError('CONFIG', 'invalid memory:// URL', { cause: err });
      }
      return new MemoryOps(memoryBroker(parsed.hostname));
    },
  };
}

const notFound = (topic: string): MqError => new MqError('NOT_FOUND', `topic "${topic}" does not exist`, { details: { topic } });

class MemoryOps implements DriverOps {
  readonly name = 'memory';
  readonly capabilities = { read: 'peek', remove: 'any', listTopics: true, listGroups: true } as const;
  readonly #broker: MemoryBroker;

  constructor(broker: MemoryBroker) {
    this.#broker = broker;
  }

  async listTopics(): Promise<readonly string[]> {
    return this.#broker.topicNames();
  }

  #log(topic: string): ReadonlyArray<{ readonly seq: number; readonly envelope: Envelope }> {
    const log = this.#broker.retained(topic);
    if (!log) throw notFound(topic);
    return log;
  }

  async depth(topic: string): Promise<number> {
    return this.#log(topic).length;
  }

  async read(topic: string, limit: number): Promise<MessageBatch> {
    const taken = this.#log(topic).slice(0, limit);
    const seqOf = new Map<StoredMessage, number>();
    const messages = taken.map(({ seq, envelope }) => {
      const message: StoredMessage = { envelope: copy(envelope), position: String(seq) };
      seqOf.set(message, seq);
      return message;
    });
    return {
      messages,
      remove: async (some) => {
        const seqs = new Set(some.map((m) => seqOf.get(m) ?? -1));
        if (seqs.has(-1)) throw new MqError('INVALID_MESSAGE', 'remove: a message not read in this batch');
        this.#broker.removeRetained(topic, seqs);
      },
      release: async () => {},
    };
  }

  async purge(topic: string): Promise<number> {
    const log = this.#log(topic);
    return this.#broker.removeRetained(topic, new Set(log.map((m) => m.seq)));
  }

  async backlog(topic: string | undefined, group: string | undefined): Promise<readonly BacklogRow[]> {
    const topics = topic === undefined ? this.#broker.topicNames() : [topic];
    const rows: BacklogRow[] = [];
    for (const t of topics) {
      const stats = this.#broker.groupStats(t);
      if (!stats) throw notFound(t);
      for (const s of stats) {
        if (group !== undefined && s.group !== group) continue;
        rows.push({ topic: t, group: s.group, backlog: s.ready + s.inFlight, ready: s.ready, inFlight: s.inFlight, consumers: s.consumers });
      }
    }
    if (group !== undefined && topic !== undefined && rows.length === 0) {
      throw new MqError('NOT_FOUND', `group "${group}" does not exist on topic "${topic}"`, { details: { topic, group } });
    }
    return rows;
  }

  async close(): Promise<void> {}
}
