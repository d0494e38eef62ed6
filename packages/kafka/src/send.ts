/** Reliable send: one produce request per topic, all in parallel, each outcome per message. */
import type { Envelope, SendOutcome } from '@mqkit/core/driver';
import type { KafkaClientSeam, ProducerSeam } from './client/seam.ts';
import { envelopeBatch } from './records.ts';

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
  const now = Date.now();
  const topic = envelopes[0]?.topic;
  // The usual batch has one topic: no regrouping, outcomes in input order.
  if (topic !== undefined && envelopes.every((e) => e.topic === topic)) {
    return sendTopic(seam, producer, topic, envelopes, now);
  }
  const outcomes: SendOutcome[] = new Array<SendOutcome>(envelopes.length);
  await Promise.all(
    [...groupByTopic(envelopes)].map(async ([name, items]) => {
      const results = await sendTopic(
        seam,
        producer,
        name,
        items.map((i) => i.envelope),
        now,
      );
      items.forEach((item, i) => {
        outcomes[item.index] = results[i]!;
      });
    }),
  );
  return outcomes;
}

/** One produce request's outcomes, in record order; never rejects. */
async function sendTopic(
  seam: KafkaClientSeam,
  producer: ProducerSeam,
  topic: string,
  envelopes: readonly Envelope[],
  now: number,
): Promise<SendOutcome[]> {
  try {
    const written = await producer.send(topic, envelopeBatch(envelopes, now));
    // Positions are exact only when everything went to one partition.
    const only = written.length === 1 ? written[0] : undefined;
    const base = only && /^\d+$/.test(only.baseOffset) ? BigInt(only.baseOffset) : undefined;
    if (only === undefined || base === undefined) return envelopes.map(() => ({ ok: true, receipt: undefined }));
    return envelopes.map((_, i) => ({ ok: true, receipt: `${only.partition}:${base + BigInt(i)}` }));
  } catch (err) {
    const error = seam.classify(err, { topic, messages: envelopes.length });
    return envelopes.map(() => ({ ok: false, error }));
  }
}
