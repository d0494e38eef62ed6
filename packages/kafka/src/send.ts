/** Reliable send: one produce request per topic, all in parallel, each outcome per message. */
import type { Envelope, SendOutcome } from '@mqkit/core/driver';
import type { ProducerSeam, KafkaClientSeam } from './client/seam.ts';
import { toRecord } from './records.ts';

export interface Indexed {
  readonly index: number;
  readonly envelope: Envelope;
}

/** Envelopes grouped by topic, keeping their input index and order. */
export function groupByTopic(envelopes: readonly Envelope[]): Map<string, Indexed[]> {
  const byTopic = new Map<string, Indexed[]>();
  envelopes.forEach((envelope, index) => {
    const list = byTopic.get(envelope.topic);
    if (list) list.push({ index, envelope });
    else byTopic.set(envelope.topic, [{ index, envelope }]);
  });
  return byTopic;
}

/**
 * Sends and reports one outcome per envelope. A failed request fails every message in it with
 * the classified error: kafkajs cannot tell which partitions of a request were written, so a
 * retry may duplicate some (consumers deduplicate by message id).
 */
export async function sendEnvelopes(
  seam: KafkaClientSeam,
  producer: ProducerSeam,
  envelopes: readonly Envelope[],
): Promise<SendOutcome[]> {
  const outcomes: SendOutcome[] = new Array<SendOutcome>(envelopes.length);
  const now = Date.now();
  await Promise.all(
    [...groupByTopic(envelopes)].map(async ([topic, items]) => {
      try {
        const written = await producer.send(topic, items.map((i) => toRecord(i.envelope, now)));
        // Positions are exact only when everything went to one partition.
        const only = written.length === 1 ? written[0] : undefined;
        const base = only && /^\d+$/.test(only.baseOffset) ? BigInt(only.baseOffset) : undefined;
        items.forEach((item, i) => {
          outcomes[item.index] = { ok: true, receipt: only && base !== undefined ? `${only.partition}:${base + BigInt(i)}` : undefined };
        });
      } catch (err) {
        const error = seam.classify(err, { topic, messages: items.length });
        for (const item of items) outcomes[item.index] = { ok: false, error };
      }
    }),
  );
  return outcomes;
}
