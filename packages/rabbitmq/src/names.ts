/**
 * How mqkit names RabbitMQ objects. Kept in one place so that users who manage topology
 * themselves (`declare: false`) can create exactly these names.
 *
 * - topic `T`                  → durable topic exchange `T`
 * - group `G` on topic `T`     → durable quorum queue `T.G`, bound to `T` with `#`
 * - dead-letter topic `D`      → exchange `D` and (by default) a quorum queue `D` keeping every dead letter
 * - delayed retry in `T.G`, and a delayed publish once it reached `T.G`
 *                              → quorum queue `T.G~retry~<ms>` dead-lettering (at least once) into queue `T.G` only
 *
 * Earlier versions used classic queues named `T~delay~<ms>` and `T.G~delay~<ms>` (at-most-once
 * dead-lettering); they are no longer declared or published to, but what they still hold keeps
 * flowing into the topic or group as before.
 */

/** Exchange, queue and routing-key names are AMQP short strings: at most 255 bytes. */
export const MAX_NAME_BYTES = 255;

/**
 * Topic names mqkit accepts: short enough that the group queue and its delay queues still fit in
 * 255 bytes, and never in the broker-reserved `amq.` namespace.
 */
export const TOPIC_PATTERN = /^(?!amq\.)[A-Za-z0-9][A-Za-z0-9_.:-]{0,119}$/;

/** Separator of the classic delay queues of earlier versions (no longer declared). */
export const DELAY_SEPARATOR = '~delay~';
/** Separator of the quorum retry/delay queues (a new name: a queue's type cannot change in place). */
export const RETRY_SEPARATOR = '~retry~';

/** The queue of consumer group `group` on `topic`. */
export function groupQueueName(topic: string, group: string): string {
  return `${topic}.${group}`;
}

/**
 * The classic TTL queue earlier versions used for publishes to `topic` delayed in `bucketMs`'s
 * bucket (dead-lettering into the topic's exchange). No longer declared or published to.
 * @deprecated delayed publishes now go through the topic's exchange (see the README).
 */
export function publishDelayQueueName(topic: string, bucketMs: number): string {
  return `${topic}${DELAY_SEPARATOR}${bucketMs}`;
}

/**
 * The quorum TTL queue holding delayed retries (and delayed publishes that reached the group) of
 * `queue` whose delay falls in `bucketMs`'s bucket.
 */
export function retryDelayQueueName(queue: string, bucketMs: number): string {
  return `${queue}${RETRY_SEPARATOR}${bucketMs}`;
}

/** True when `name` is one of `queue`'s delay queues (this version's or an earlier one's). */
export function isDelayQueueOf(name: string, queue: string): boolean {
  if (!name.startsWith(queue)) return false;
  const rest = name.slice(queue.length);
  const sep = rest.startsWith(RETRY_SEPARATOR) ? RETRY_SEPARATOR : rest.startsWith(DELAY_SEPARATOR) ? DELAY_SEPARATOR : undefined;
  return sep !== undefined && /^[0-9]+$/.test(rest.slice(sep.length));
}

/**
 * The delay bucket for `delayMs`: the delay rounded up to two significant digits (at least
 * 10 ms), so a bucket spans at most 10 % of its delay and a few dozen queues cover a decade.
 * Messages carry their exact delay as per-message TTL; the bucket only groups similar delays
 * so that one queue's head-of-line expiry never holds a short delay behind a long one by more
 * than the bucket's width.
 */
export function delayBucket(delayMs: number): number {
  const ms = Math.max(1, Math.ceil(delayMs));
  if (ms <= 100) return Math.ceil(ms / 10) * 10;
  const step = 10 ** (Math.floor(Math.log10(ms)) - 1);
  return Math.ceil(ms / step) * step;
}

/** True when `name` fits an AMQP short string. */
export function fitsName(name: string): boolean {
  return Buffer.byteLength(name) <= MAX_NAME_BYTES;
}
