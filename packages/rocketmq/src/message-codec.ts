/**
 * How an mqkit {@link Envelope} travels as a RocketMQ message: the id, key and producer timestamp
 * ride in user properties (the broker makes its own message id and born time), headers are the
 * other user properties, the key is also a RocketMQ key (searchable in the dashboard) and, on FIFO
 * topics, the message group.
 *
 * The proxy refuses a 0-byte body (41302 "message body cannot be empty"), so an empty body travels
 * as a one-byte placeholder plus the property `x-mqkit-empty-body`. The consumer empties the body
 * only when both are there: a producer setting the property on a real body cannot make it vanish.
 */
import { WIRE_HEADERS, type Envelope } from '@mqkit/core/driver';
import type { MessageOptions, MessageView } from 'rocketmq-client-nodejs';
import type { TopicType } from './topic-types.ts';

/** User-property names the adapter owns (headers cannot use them: `x-mqkit-` is reserved by core). */
export const PROPERTY = {
  id: WIRE_HEADERS.id,
  key: WIRE_HEADERS.key,
  timestamp: WIRE_HEADERS.timestamp,
  /** Names of headers whose value is empty: the broker drops empty-valued properties. */
  empty: 'x-mqkit-empty-headers',
  /** Marks the {@link EMPTY_BODY} placeholder standing for a 0-byte body. */
  emptyBody: 'x-mqkit-empty-body',
} as const;

/** Placeholder body of an empty message: one byte (the proxy refuses empty bodies). */
const EMPTY_BODY = Buffer.from([0]);

const OWN = new Set<string>(Object.values(PROPERTY));

/**
 * RocketMQ system properties (org.apache.rocketmq.common.message.MessageConst) the proxy may hand
 * over among the user properties, e.g. `__SHARDINGKEY` (the message group) on FIFO messages. They
 * are not headers: copied into a dead letter or a republished message they change its type (a
 * FIFO copy that a NORMAL topic refuses, a half message) or its keys and tags.
 */
const SYSTEM_PROPERTIES = new Set<string>([
  'KEYS', 'TAGS', 'WAIT', 'DELAY', 'RETRY_TOPIC', 'REAL_TOPIC', 'REAL_QID', 'TRAN_MSG', 'PGROUP',
  'MIN_OFFSET', 'MAX_OFFSET', 'BUYER_ID', 'ORIGIN_MESSAGE_ID', 'TRANSFER_FLAG', 'CORRECTION_FLAG',
  'MQ2_FLAG', 'RECONSUME_TIME', 'MSG_REGION', 'TRACE_ON', 'UNIQ_KEY', 'MAX_RECONSUME_TIMES',
  'CONSUME_START_TIME', 'POP_CK', 'POP_CK_OFFSET', '1ST_POP_TIME', 'TRAN_PREPARED_QUEUE_OFFSET',
  'DUP_INFO', 'EXTEND_UNIQ_INFO', 'INSTANCE_ID', 'CORRELATION_ID', 'REPLY_TO_CLIENT', 'TTL',
  'ARRIVE_TIME', 'PUSH_REPLY_TIME', 'CLUSTER', 'MSG_TYPE', 'INNER_MULTI_QUEUE_OFFSET', 'INNER_MULTI_DISPATCH',
  'TRANSACTION_CHECK_TIMES', 'CHECK_IMMUNITY_TIME_IN_SECONDS', 'TIMER_DELIVER_MS', 'TIMER_DELAY_SEC',
  'TIMER_DELAY_MS', 'TIMER_OUT_MS', 'TIMER_ENQUEUE_MS', 'TIMER_DEQUEUE_MS', 'TIMER_ROLL_TIMES',
  'TIMER_DEL_UNIQKEY', 'STARTDELIVERTIME', 'INNER_NUM', 'INNER_BASE',
]);

function isSystemProperty(name: string): boolean {
  return name.startsWith('__') || SYSTEM_PROPERTIES.has(name);
}

/**
 * The native message for `envelope` on a topic of type `type`. The message type the client infers
 * must match the topic's: FIFO needs a message group, DELAY a delivery timestamp, NORMAL neither.
 */
export function toMessageOptions(envelope: Envelope, type: TopicType, now = Date.now()): MessageOptions {
  const properties = new Map<string, string>();
  const { headers } = envelope;
  let empty: string[] | undefined;
  // for…in, not Object.entries: no pair arrays per header on the publish path.
  for (const name in headers) {
    const value = headers[name]!;
    if (value === '') (empty ??= []).push(name);
    else properties.set(name, value);
  }
  if (empty !== undefined) properties.set(PROPERTY.empty, JSON.stringify(empty));
  properties.set(PROPERTY.id, envelope.id);
  properties.set(PROPERTY.timestamp, String(envelope.timestamp));
  const keys = [envelope.id];
  if (envelope.key !== undefined) {
    properties.set(PROPERTY.key, envelope.key);
    keys.push(envelope.key);
  }
  let body: Buffer;
  if (envelope.body.byteLength === 0) {
    body = EMPTY_BODY;
    properties.set(PROPERTY.emptyBody, '1');
  } else {
    body = Buffer.from(envelope.body.buffer, envelope.body.byteOffset, envelope.body.byteLength);
  }
  const message: MessageOptions = { topic: envelope.topic, body, keys, properties };
  if (type === 'FIFO') {
    // Unkeyed messages get their own group: no ordering was asked for, so none is imposed.
    message.messageGroup = envelope.key ?? envelope.id;
  } else if (type === 'DELAY') {
    // A DELAY topic accepts only timed messages; "now" means deliver at once.
    message.deliveryTimestamp = new Date(now + (envelope.delayMs ?? 0));
  }
  return message;
}

/** The envelope carried by a received message. Messages from non-mqkit producers get defaults. */
export function fromMessageView(view: MessageView): Envelope {
  const headers: Record<string, string> = {};
  for (const [name, value] of view.properties) {
    if (!OWN.has(name) && !isSystemProperty(name)) headers[name] = value;
  }
  for (const name of emptyHeaderNames(view.properties.get(PROPERTY.empty))) headers[name] = '';
  const ownId = view.properties.get(PROPERTY.id);
  const id = ownId ?? view.messageId;
  // An mqkit message says whether it had a key; for others the message group is the closest thing.
  const key = ownId !== undefined ? view.properties.get(PROPERTY.key) : view.messageGroup;
  const stamp = Number(view.properties.get(PROPERTY.timestamp));
  const timestamp = Number.isFinite(stamp) && stamp > 0 ? stamp : (view.bornTimestamp?.getTime() ?? Date.now());
  const placeholder = view.properties.get(PROPERTY.emptyBody) !== undefined && view.body.equals(EMPTY_BODY);
  const body = placeholder ? new Uint8Array(0) : new Uint8Array(view.body.buffer, view.body.byteOffset, view.body.byteLength);
  return { id, topic: stripNamespace(view.topic), key: key || undefined, headers, body, timestamp };
}

/** The proxy may return `namespace%topic`; mqkit users name topics without the namespace. */
function stripNamespace(topic: string): string {
  const at = topic.indexOf('%');
  return at >= 0 && !topic.startsWith('%') ? topic.slice(at + 1) : topic;
}

function emptyHeaderNames(encoded: string | undefined): string[] {
  if (!encoded) return [];
  try {
    const names: unknown = JSON.parse(encoded);
    return Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : [];
  } catch {
    return [];
  }
}
