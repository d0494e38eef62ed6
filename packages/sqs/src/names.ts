/**
 * How mqkit topic and group names become SQS queue and SNS topic names.
 *
 * SQS queue names allow [A-Za-z0-9_-], at most 80 characters, and FIFO queues must end in `.fifo`;
 * SNS topic names allow the same characters up to 256. A topic is FIFO when its name ends in
 * `.fifo`. Core derives dead-letter topics as `${topic}-dlq`, which for `orders.fifo` gives
 * `orders.fifo-dlq`: such names are accepted and mapped to the native FIFO name `orders-dlq.fifo`.
 */
import { createHash } from 'node:crypto';

const FIFO = '.fifo';

/** Topic names this adapter accepts (see the module comment for the `.fifo-…` form). */
export const TOPIC_PATTERN = /^[A-Za-z0-9_-]{1,240}(\.fifo(-[A-Za-z0-9_-]{1,10})*)?$/;

/** Longest SQS queue name. */
export const MAX_QUEUE_NAME = 80;

/** Whether a topic (mqkit or native name) is FIFO. */
export function isFifo(topic: string): boolean {
  return topic.endsWith(FIFO) || /\.fifo-/.test(topic);
}

/** The broker's name for an mqkit topic: `a.fifo-dlq` → `a-dlq.fifo`; other names unchanged. */
export function nativeTopicName(topic: string): string {
  const at = topic.indexOf(`${FIFO}-`);
  if (at < 0) return topic;
  return `${topic.slice(0, at)}${topic.slice(at + FIFO.length)}${FIFO}`;
}

function hash(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/**
 * Fits a native name into `max` characters, keeping the `.fifo` suffix: long names keep their
 * beginning and get a hash of the whole name, so distinct long names stay distinct.
 */
export function fitName(name: string, max = MAX_QUEUE_NAME): string {
  if (name.length <= max) return name;
  const suffix = name.endsWith(FIFO) ? FIFO : '';
  const base = name.slice(0, name.length - suffix.length);
  const digest = hash(name, 12);
  return `${base.slice(0, max - suffix.length - digest.length - 1)}-${digest}${suffix}`;
}

/** The SQS queue that holds a topic's messages in queue mode (no SNS). */
export function topicQueueName(topic: string): string {
  return fitName(nativeTopicName(topic));
}

/**
 * The SQS queue of one consumer group on an SNS topic: `<topic>__<group>`. Characters SQS does
 * not allow are replaced, and a hash of the original group keeps replaced names distinct.
 */
export function groupQueueName(topic: string, group: string): string {
  const native = nativeTopicName(topic);
  const fifo = native.endsWith(FIFO);
  const base = fifo ? native.slice(0, -FIFO.length) : native;
  const clean = group.replace(/[^A-Za-z0-9_-]/g, '_');
  const safeGroup = clean === group ? group : `${clean}-${hash(group, 8)}`;
  return fitName(`${base}__${safeGroup}${fifo ? FIFO : ''}`);
}
