/**
 * Unique resource names so suites (and repeated runs, and other developers' runs against the same
 * brokers) never share a topic, queue or group. Names use only [a-z0-9-], which every broker
 * accepts (Kafka, RabbitMQ, RocketMQ, SQS/SNS, PostgreSQL identifiers once quoted, Redis keys),
 * and stay short enough for SQS's 80-character limit even with a `.fifo` suffix.
 */
import { randomBytes } from 'node:crypto';

/** Per-process run id: base36 time + pid, shared by all names this process makes. */
export const RUN_ID = `${Date.now().toString(36)}${process.pid.toString(36)}`;
let seq = 0;

function sanitize(prefix: string): string {
  const s = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return (s || 'mqkit').slice(0, 32);
}

/** `<prefix>-<run id>-<seq><random>`, e.g. `orders-m3x9k2a1b-0f3a9c`. */
export function uniqueName(prefix: string, opts: { fifo?: boolean } = {}): string {
  const name = `${sanitize(prefix)}-${RUN_ID}-${(seq++).toString(36)}${randomBytes(3).toString('hex')}`;
  return opts.fifo ? `${name}.fifo` : name;
}

export const uniqueTopic = (prefix = 'topic'): string => uniqueName(prefix);
export const uniqueQueue = (prefix = 'queue', opts: { fifo?: boolean } = {}): string => uniqueName(prefix, opts);
export const uniqueGroup = (prefix = 'group'): string => uniqueName(prefix);

/** A SQL identifier (tables, channels): underscores instead of dashes. */
export const uniqueIdent = (prefix = 'mqkit'): string => uniqueName(prefix).replace(/-/g, '_');
