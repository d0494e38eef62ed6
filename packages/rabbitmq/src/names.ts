/**
 * How mqkit names RabbitMQ objects. Kept in one place so that users who manage topology
 * themselves (`declare: false`) can create exactly these names.
 *
 * - topic `T`                  → durable topic exchange `T`
 * - group `G` on topic `T`     → durable quorum queue `T.G`, bound to `T` with `#`
 * - dead-letter topic `D`      → exchange `D` and (by default) a quorum queue `D` keeping every dead letter
 * - delayed publish to `T`     → queue `T~delay~<ms>` dead-lettering into exchange `T`
 * - delayed retry in `T.G`     → queue `T.G~delay~<ms>` dead-lettering into queue `T.G` only
 */

/** Exchange, queue and routing-key names are AMQP short strings: at most 255 bytes. */
export const MAX_NAME_BYTES = 255;

/**
 * Topic names mqkit accepts: short enough that the group queue and its delay queues still fit in
 * 255 bytes, and never in the broker-reserved `amq.` namespace.
 */
export const TOPIC_PATTERN = /^(?!amq\.)[A-Za-z0-9][A-Za-z0-9_.:-]{0,119}$/;

export const DELAY_SEPARATOR = '~delay~';

/** The queue of consumer group `group` on `topic`. */
export function groupQueueName(topic: string, group: string): string {
  return `${topic}.${group}`;
}

/** The TTL queue holding messages published to `topic` with a delay in `bucketMs`'s bucket. */
export function publishDelayQueueName(topic: string, bucketMs: number): string {
  return `${topic}${DELAY_SEPARATOR}${bucketMs}`;
}

/** The TTL queue holding retries of `queue` whose delay falls in `bucketMs`'s bucket. */
export function retryDelayQueueName(queue: string, bucketMs: number): string {
  return `${queue}${DELAY_SEPARATOR}${bucketMs}`;
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
