/**
 * The topology part of the driver contract: declare (create what is missing) and verify (report
 * what is missing) a topic, its consumer groups and its dead-letter topic, the same description on
 * every broker. Optional ({@link Driver.topology}); core's `client.declare()`, `client.verify()`
 * and the `topology` connect mode call it.
 */
import { MqError } from '../errors.ts';

/** What one topic needs, as a driver receives it (validated and defaulted by core). */
export interface TopologySpec {
  readonly topic: string;
  /** Keyed messages consumed in order (RocketMQ: FIFO topic and orderly groups; SQS: a `.fifo` name; RabbitMQ: single active consumer). */
  readonly ordered: boolean;
  /** Messages are published with a delay (RocketMQ: a DELAY topic; elsewhere nothing to declare). */
  readonly delayed?: boolean | undefined;
  /** Messages are published inside `client.transaction()` (RocketMQ: a TRANSACTION topic). */
  readonly transactional?: boolean | undefined;
  /** Partitions (Kafka) or queues per broker (RocketMQ) of a topic created now; the adapter's default when absent. */
  readonly partitions?: number | undefined;
  /** Consumer groups that must keep every message published from now on, subscribed or not. */
  readonly groups: readonly string[];
  /** The dead-letter topic to declare with it, or undefined for none. */
  readonly deadLetterTopic?: string | undefined;
  /**
   * Per group: the adapter subscription options it will be consumed with (e.g. SQS's
   * `filterPolicy`, RabbitMQ's `queue`), so that what is declared is what the subscription
   * consumes. Validated by the driver as its subscription options are.
   */
  readonly groupOptions?: Readonly<Record<string, Readonly<Record<string, unknown>>>> | undefined;
  /**
   * Declared for a `subscribe()` of `groups[0]`: its consumer is about to start, so a driver may
   * leave out what the subscription creates by itself (e.g. a Kafka group's first offsets).
   */
  readonly forSubscribe?: boolean | undefined;
}

/** One thing {@link DriverTopology.verify} found missing (or different). */
export interface MissingTopology {
  readonly kind: 'topic' | 'group' | 'dead-letter topic';
  /** The mqkit name (topic or group). */
  readonly name: string;
  /** The topic a group belongs to. */
  readonly topic?: string | undefined;
  /** Why, when it exists but does not fit (e.g. "a NORMAL topic, ordered needs FIFO"). */
  readonly problem?: string | undefined;
}

/** What a driver's topology step can do; the conformance suite reads it. */
export interface TopologyCapabilities {
  /** `partitions` is honoured when a topic is created. */
  readonly partitions: boolean;
  /**
   * A declared group keeps messages published before its first subscriber. False where the broker
   * cannot (then the conformance scenario is skipped by name).
   */
  readonly retainsForDeclaredGroups: boolean;
  /**
   * Publishing to a missing topic creates it (memory, Redis) or the driver declares it on send
   * (RabbitMQ's and SQS's `declare` option). When false, core in `topology: 'create'` mode
   * declares a topic before this client's first publish to it. @default false
   */
  readonly createsOnPublish?: boolean;
}

/** Implemented by adapters that can create and check topology ({@link Driver.topology}). */
export interface DriverTopology {
  readonly capabilities: TopologyCapabilities;
  /**
   * Creates what is missing (idempotent; existing resources are left as they are). Rejects with a
   * classified MqError: CONFIG when the endpoint cannot (e.g. no admin access configured), naming
   * the option that enables it.
   */
  declare(spec: TopologySpec): Promise<void>;
  /** Lists what is missing; `[]` when everything exists. Rejects only when it cannot tell. */
  verify(spec: TopologySpec): Promise<readonly MissingTopology[]>;
}

/** `client.declare({ … })` as code, for error messages that show the call that fixes things. */
export function declareCall(spec: Pick<TopologySpec, 'topic' | 'ordered' | 'groups' | 'delayed' | 'transactional'>): string {
  const parts = [`topic: '${spec.topic}'`];
  if (spec.ordered) parts.push('ordered: true');
  if (spec.delayed) parts.push('delayed: true');
  if (spec.transactional) parts.push('transactional: true');
  if (spec.groups.length > 0) parts.push(`groups: [${spec.groups.map((g) => `'${g}'`).join(', ')}]`);
  return `client.declare({ ${parts.join(', ')} })`;
}

function describe(m: MissingTopology): string {
  const what = m.kind === 'group' ? `consumer group "${m.name}" of topic "${m.topic ?? ''}"` : `${m.kind} "${m.name}"`;
  return m.problem ? `${what} ${m.problem}` : `${what} does not exist`;
}

/**
 * The NOT_FOUND error for missing topology: names each missing topic and group and the call or
 * option that creates them. `hint` adds what the adapter needs for that (e.g. an admin endpoint).
 */
export function missingTopologyError(adapter: string, missing: readonly MissingTopology[], spec: Pick<TopologySpec, 'topic' | 'ordered' | 'groups' | 'delayed' | 'transactional'>, hint?: string, cause?: unknown): MqError {
  const groups = [...new Set([...spec.groups, ...missing.filter((m) => m.kind === 'group' && m.topic === spec.topic).map((m) => m.name)])];
  // Something that exists but does not fit is not created by declaring it again: the problem says what to do.
  const code = missing.some((m) => m.problem) ? 'CONFIG' : 'NOT_FOUND';
  const fix = code === 'CONFIG' ? '' : `: create ${missing.length > 1 ? 'them' : 'it'} with ${declareCall({ ...spec, groups })}, or connect with topology: 'create'`;
  return new MqError(code, `${adapter}: ${missing.map(describe).join('; ')}${fix}${hint ? ` (${hint})` : ''}`, {
    cause,
    details: { topic: spec.topic, missing: missing.map((m) => ({ ...m })) },
  });
}
