/**
 * SNS fan-out with filter policies. One SNS topic; each consumer group is an SQS queue subscribed
 * to it with its own filter policy, so SNS delivers to a group only the messages it selects (the
 * filter runs on the message attributes, i.e. mqkit's headers). Filtering in SNS instead of in the
 * handler means a group never pays for, retries or dead-letters what it does not want.
 */
import { connect, type Client, type Delivery, type Subscription } from '@mqkit/core';
import { sqs } from '@mqkit/sqs';

/** What travels on the topic; `region` and `type` also go out as headers for the filters. */
export interface OrderEvent {
  orderId: string;
  type: 'order.created' | 'order.refunded' | 'order.cancelled';
  region: 'eu' | 'us';
}

/**
 * The groups and their filter policies: the one place they are written, used both to declare the
 * subscriptions and to consume them (a group's options must be the same in both).
 */
export const GROUPS = {
  /** Ships from the EU warehouse: every event of an EU order. */
  'eu-warehouse': { filterPolicy: { region: ['eu'] } },
  /** Pays money back: refunds and cancellations, any region. */
  refunds: { filterPolicy: { type: ['order.refunded', 'order.cancelled'] } },
  /** Keeps the audit trail: no filter policy, so everything. */
  audit: {},
} as const satisfies Record<string, { filterPolicy?: Record<string, string[]> }>;

export type GroupName = keyof typeof GROUPS;

/**
 * Connects to SQS + SNS by URL (`sqs://?region=…[&endpoint=…]`, SNS mode is the default) and
 * declares the topic with its groups: the SNS topic, one queue per group subscribed with its
 * filter policy, and the dead-letter topic. Declared before anything is published, each group
 * keeps what is published before its consumer starts.
 */
export async function connectFanout(url: string, topic: string, options: Record<string, unknown> = {}): Promise<Client> {
  const client = await connect(url, { adapters: [sqs()], options });
  try {
    await client.declare({
      topic,
      groups: Object.entries(GROUPS).map(([name, groupOptions]) => ({ name, options: groupOptions })),
      deadLetter: true,
    });
  } catch (err) {
    await client.close();
    throw err;
  }
  return client;
}

/** Publishes an event with the headers the filter policies look at. */
export async function publishEvent(client: Client, topic: string, event: OrderEvent): Promise<void> {
  await client.publish(topic, event, { id: `${event.orderId}:${event.type}`, headers: { region: event.region, type: event.type } });
}

/** Starts one consumer per group; `onEvent` sees which group got which event. */
export async function consumeGroups(
  client: Client,
  topic: string,
  onEvent: (group: GroupName, event: OrderEvent, delivery: Delivery<OrderEvent>) => void | Promise<void>,
): Promise<Subscription[]> {
  return Promise.all(
    (Object.keys(GROUPS) as GroupName[]).map((group) =>
      client.subscribe<OrderEvent>(topic, { group, options: GROUPS[group], handler: (d) => onEvent(group, d.payload, d) }),
    ),
  );
}
