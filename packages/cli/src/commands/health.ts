/**
 * `mqkit health`: connect, subscribe to a scratch topic, publish, and wait for the message to come
 * back (exit 0), all within --timeout; anything else exits 1 (2 for a bad URL or flags).
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { MqError, redactUrl, type Client } from '@mqkit/core';
import { parseOptions, withDeadline } from '@mqkit/core/driver';
import { brokerUrl, openClient, schemeOf } from '../backend.ts';
import { output, type CommandContext } from '../context.ts';
import { describeError, EXIT, exitCodeOf, type ExitCode } from '../exit-codes.ts';

const healthSchema = z.object({ topic: z.string().min(1).default('mqkit-health'), group: z.string().min(1).default('mqkit-health') }).strict();

/** Published again this often until one comes back: a new group may join after the first publish. */
const REPUBLISH_MS = 2_000;

/** `health --json`. */
export interface HealthReport {
  ok: boolean;
  adapter: string;
  url: string;
  topic: string;
  roundTripMs: number | null;
  error: { code: string; message: string } | null;
}

export async function health(ctx: CommandContext, raw: unknown): Promise<ExitCode> {
  const opts = parseOptions(healthSchema, raw, 'health');
  const url = brokerUrl(ctx.flags.url, ctx.io.env);
  const scheme = schemeOf(url);
  const started = Date.now();
  let roundTripMs: number | null = null;
  let failure: unknown;
  try {
    roundTripMs = await withDeadline(roundTrip(url, opts.topic, opts.group, ctx.flags.timeout), ctx.flags.timeout, 'health round trip');
  } catch (err) {
    if (exitCodeOf(err) === EXIT.BAD_INPUT && !MqError.is(err, 'NOT_FOUND')) throw err;
    failure = err;
  }
  const report: HealthReport = {
    ok: failure === undefined,
    adapter: scheme,
    url: redactUrl(url),
    topic: opts.topic,
    roundTripMs,
    error: failure === undefined ? null : describeError(failure),
  };
  output<HealthReport>(ctx, report, () =>
    report.ok
      ? `healthy: ${report.url} round trip ${roundTripMs} ms on ${opts.topic}\n`
      : `unhealthy: ${report.url} after ${Date.now() - started} ms: ${report.error?.code} ${report.error?.message}\n`,
  );
  return report.ok ? EXIT.OK : EXIT.FAILED;
}

async function roundTrip(url: string, topic: string, group: string, timeoutMs: number): Promise<number> {
  let client: Client | undefined;
  const abandon = new AbortController();
  const connecting = openClient(url, { topology: 'create', publish: { timeoutMs } });
  // A late connect after the deadline is closed, not left open.
  void connecting.then(
    (c) => {
      if (abandon.signal.aborted) void c.close().catch(() => {});
    },
    () => {},
  );
  try {
    client = await connecting;
    const ids = new Set<string>();
    let arrived!: () => void;
    const back = new Promise<void>((resolve) => (arrived = resolve));
    const sub = await client.subscribe(topic, {
      group,
      handler: async (delivery) => {
        if (ids.has(delivery.id)) arrived();
      },
    });
    try {
      const start = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const publish = async (): Promise<void> => {
        const id = randomUUID();
        ids.add(id);
        await client!.publish(topic, { probe: 'mqkit health', at: new Date().toISOString() }, { id });
      };
      await publish();
      const again = new Promise<never>((_, reject) => {
        timer = setInterval(() => void publish().catch(reject), REPUBLISH_MS);
      });
      try {
        await Promise.race([back, again]);
      } finally {
        clearInterval(timer);
      }
      return Date.now() - start;
    } finally {
      await sub.close({ timeoutMs: 2_000 }).catch(() => {});
    }
  } finally {
    abandon.abort();
    await client?.close().catch(() => {});
  }
}
