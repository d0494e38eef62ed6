/**
 * Consumer backlog (lag) and dead-letter depth as OpenTelemetry gauges, the same on every broker:
 * read through the adapter's operations contract ({@link DriverOps}, `ops()` of each adapter
 * package) each time a metric reader collects. Separate from the client on purpose: the ops
 * connection is an administrative one, and one process (a sidecar, the `mqkit` CLI's host, one
 * replica) is enough to export a group's backlog.
 */
import { metrics, type BatchObservableCallback, type MeterProvider, type Observable } from '@opentelemetry/api';
import { z } from 'zod';
import { parseOptions } from './config.ts';
import { withDeadline } from './deadline.ts';
import type { DriverOps } from './driver/ops.ts';
import { toMqError } from './errors.ts';
import { silentLogger, type Logger } from './logger.ts';
import { messagingSystem, SCHEMA_URL } from './telemetry.ts';

const targetSchema = z
  .object({
    topic: z.string().min(1),
    /** One group; omitted: every group of the topic (where the adapter can list them). */
    group: z.string().min(1).optional(),
    /** The dead-letter topic to report the depth of; `false`: none. @default `${topic}-dlq` */
    deadLetterTopic: z.union([z.string().min(1), z.literal(false)]).optional(),
  })
  .strict();

const optionsSchema = z
  .object({
    /** The adapter's operations, e.g. `await kafkaOps().create(url, {}, { logger })`. */
    ops: z.custom<DriverOps>(
      (v) => typeof (v as DriverOps | undefined)?.backlog === 'function' && typeof (v as DriverOps).depth === 'function',
      "must be an adapter's DriverOps (its ops().create(...))",
    ),
    /** What to report. */
    topics: z.array(targetSchema).min(1),
    /** @default the global meter provider */
    meterProvider: z.custom<MeterProvider>((v) => typeof (v as MeterProvider | undefined)?.getMeter === 'function', 'must be an OpenTelemetry MeterProvider').optional(),
    /** Longest a collection waits for the broker; a topic that does not answer in time is left out of that collection. @default 10000 */
    timeoutMs: z.number().int().positive().optional(),
    /** pino-compatible logger for failed reads. @default silent */
    logger: z.custom<Logger>((v) => typeof (v as Logger | undefined)?.warn === 'function', 'must be a logger').optional(),
  })
  .strict();

/** Options of {@link observeBacklog}. */
export type BacklogMetricsOptions = z.input<typeof optionsSchema>;

/** What {@link observeBacklog} returns. */
export interface BacklogMetrics {
  /** Stops reporting (the ops connection stays yours to close). */
  stop(): void;
}

/**
 * Reports, at each collection:
 * - `mqkit.consumer.backlog` (`{message}`): messages a group has not settled yet, per topic,
 *   group and partition (`messaging.destination.name`, `messaging.consumer.group.name`,
 *   `messaging.destination.partition.id` where the broker has partitions or queues);
 * - `mqkit.dead_letter.depth` (`{message}`): messages in each dead-letter topic
 *   (`messaging.destination.name` is the dead-letter topic).
 *
 * Both with `messaging.system`. The conventions (1.45.0) define no backlog metric, hence mqkit's
 * names. A read that fails (topic missing, broker down, slower than `timeoutMs`) is logged and
 * left out of that collection. Throws CONFIG for bad options.
 */
export function observeBacklog(options: BacklogMetricsOptions): BacklogMetrics {
  const o = parseOptions(optionsSchema, options, 'observeBacklog');
  const { ops } = o;
  const timeoutMs = o.timeoutMs ?? 10_000;
  const logger = o.logger ?? silentLogger;
  const system = messagingSystem(ops.name);
  const meter = (o.meterProvider ?? metrics.getMeterProvider()).getMeter('@mqkit/core', undefined, { schemaUrl: SCHEMA_URL });
  const backlog = meter.createObservableGauge('mqkit.consumer.backlog', { description: 'Messages a consumer group has not settled yet (ready and in flight)', unit: '{message}' });
  const depth = meter.createObservableGauge('mqkit.dead_letter.depth', { description: 'Messages in a dead-letter topic', unit: '{message}' });
  const observables: Observable[] = [backlog, depth];
  const read = <T>(what: string, call: () => Promise<T>): Promise<T | undefined> =>
    withDeadline(call(), timeoutMs, what).catch((err: unknown) => {
      logger.warn({ err: toMqError(err), what }, 'reading a backlog for metrics failed; left out of this collection');
      return undefined;
    });
  const callback: BatchObservableCallback = async (result) => {
    await Promise.all(
      o.topics.map(async ({ topic, group, deadLetterTopic }) => {
        const dlq = deadLetterTopic ?? `${topic}-dlq`;
        const [rows, dead] = await Promise.all([
          read(`backlog of ${topic}`, () => ops.backlog(topic, group)),
          dlq === false ? undefined : read(`depth of ${dlq}`, () => ops.depth(dlq, group)),
        ]);
        for (const row of rows ?? []) {
          const attrs: Record<string, string> = { 'messaging.system': system, 'messaging.destination.name': row.topic, 'messaging.consumer.group.name': row.group };
          if (row.partition !== undefined) attrs['messaging.destination.partition.id'] = row.partition;
          result.observe(backlog, row.backlog, attrs);
        }
        if (dlq !== false && dead !== undefined) {
          const attrs: Record<string, string> = { 'messaging.system': system, 'messaging.destination.name': dlq };
          if (group !== undefined) attrs['messaging.consumer.group.name'] = group;
          result.observe(depth, dead, attrs);
        }
      }),
    );
  };
  meter.addBatchObservableCallback(callback, observables);
  return { stop: () => meter.removeBatchObservableCallback(callback, observables) };
}
