/**
 * Model-based conformance: fast-check generates random workloads (publishes with odd payloads,
 * keys, delays and headers; a behaviour per message, group and attempt; subscription restarts)
 * across several groups and retry policies, runs them on the adapter under test, and checks what
 * happened against a simple model of the guarantees. A failure prints its seed and path and a
 * one-line command that replays it.
 */
import path from 'node:path';
import { bytesCodec, HEADERS, idempotent, MemoryDedupStore, type Client, type Delivery, type Subscription } from '@mqkit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TickProbe } from './adversarial-scenarios.ts';
import type { ConformanceHarness } from './harness.ts';
import { BROKER_REGRESSIONS } from './model-regressions.ts';
import { pause, ScenarioContext } from './support.ts';

/** What one handler does with one delivery. */
export type Behaviour = 'ack' | 'slow' | 'throw' | 'nack' | 'nack-delay' | 'dead-letter' | 'hang';

/** Sizes and waits of the generated workloads. */
export interface ModelWorkload {
  /** Most messages per case (duplicates of an id come on top). */
  maxMessages: number;
  /** Most consumer groups per case (1 where groups compete instead of fanning out). */
  maxGroups: number;
  /** Close and reopen subscriptions (same or new client) between publishes. */
  restarts: boolean;
  /** Handlers that hang until their subscription gives up on them. */
  hang: boolean;
  /** Payloads 1 KiB under `maxMessageBytes`. */
  nearLimit: boolean;
  /** First retry backoff of the handlers' retry policy, ms. */
  backoffMs: number;
  /** `nack({ delayMs })` and publish delays, ms. */
  delayMs: number;
  /** How long a slow handler takes, ms. */
  slowMs: number;
  /** close() deadline used for restarts, ms (a hanging handler is abandoned after it). */
  closeTimeoutMs: number;
  /** How long every message may take to be acked or dead-lettered, ms. */
  settleMs: number;
  /** Watch for anything more after everything settled, ms. */
  quietMs: number;
  /** Longest gap allowed between two ticks of a 10 ms timer, ms. */
  driftMs: number;
  /** Poll interval while waiting, ms. */
  pollMs: number;
  /**
   * On ordered topics the broker drops a message republished with an id it saw recently (SQS FIFO
   * deduplicates by id for 5 minutes): a second copy that no group sees within this many ms is
   * accepted as deduplicated. Infinity (the default): a second copy must arrive like any other.
   */
  orderedRepublishDedupMs: number;
}

/** A seed (and optionally the fast-check path of a shrunk case) that once failed, kept as a regression case. */
export interface ModelRegression {
  readonly seed: number;
  readonly path?: string;
  readonly note: string;
}

/** Options of {@link runModelConformance}. */
export interface ModelOptions {
  /** Generated cases. @default 6 */
  runs?: number;
  /** Base seed. @default `MQKIT_MODEL_SEED`, else random (printed on failure) */
  seed?: number;
  /** Cases split over this many concurrent tests (each with seed + i). @default 1 */
  parallel?: number;
  /** Shrink a failing case to a smaller one (each try reruns it). @default false */
  shrink?: boolean;
  /** Overrides of the workload. Defaults suit a real broker: small and patient. */
  workload?: Partial<ModelWorkload>;
  /** Seeds that once failed, run every time. */
  regressions?: readonly ModelRegression[];
  /** Lines added to a failure report (e.g. what the clients logged). */
  diagnostics?: (runId: string) => readonly string[];
}

interface GroupPlan {
  readonly maxAttempts: number;
  readonly ordered: boolean;
  readonly idempotent: boolean;
  readonly concurrency: number;
}

interface MessagePlan {
  readonly body: Uint8Array;
  readonly kind: string;
  readonly key: string | undefined;
  readonly delayMs: number;
  readonly headers: Readonly<Record<string, string>>;
  /** Behaviour at attempt n is `scripts[group][n - 1]`, `ack` beyond the end. */
  readonly scripts: readonly (readonly Behaviour[])[];
  /** Publish the same id again once the first copy is settled in every group. */
  readonly duplicate: boolean;
}

interface RestartPlan {
  /** After publishing this many messages. */
  readonly after: number;
  readonly group: number;
  readonly newClient: boolean;
}

/** One generated case. */
export interface ModelCase {
  readonly mode: 'plain' | 'ordered' | 'delayed';
  readonly groups: readonly GroupPlan[];
  readonly messages: readonly MessagePlan[];
  readonly restarts: readonly RestartPlan[];
}

export const FAST_MEMORY_WORKLOAD: ModelWorkload = {
  maxMessages: 8,
  maxGroups: 3,
  restarts: true,
  hang: true,
  nearLimit: true,
  backoffMs: 1,
  delayMs: 3,
  slowMs: 2,
  closeTimeoutMs: 20,
  settleMs: 5_000,
  quietMs: 5,
  driftMs: 750,
  pollMs: 2,
  orderedRepublishDedupMs: Number.POSITIVE_INFINITY,
};

function brokerWorkload(harness: ConformanceHarness): ModelWorkload {
  const t = harness.timing ?? {};
  const deliveryMs = t.deliveryMs ?? 10_000;
  const redeliveryMs = t.redeliveryMs ?? 10_000;
  return {
    maxMessages: 5,
    maxGroups: harness.skip?.['fan-out-across-groups'] === undefined ? 2 : 1,
    restarts: true,
    hang: true,
    nearLimit: true,
    backoffMs: 20,
    delayMs: 50,
    slowMs: 20,
    closeTimeoutMs: 300,
    settleMs: deliveryMs + 4 * redeliveryMs,
    quietMs: t.quietMs ?? 500,
    driftMs: 1_500,
    pollMs: 20,
    orderedRepublishDedupMs: Number.POSITIVE_INFINITY,
  };
}

const UNLIMITED = Number.POSITIVE_INFINITY;

/** The generator of cases for an adapter with `caps` and a workload. */
export function modelCase(harness: ConformanceHarness, w: ModelWorkload): fc.Arbitrary<ModelCase> {
  const caps = harness.capabilities;
  const modes: Array<ModelCase['mode']> = ['plain'];
  if (caps.ordering === 'key') modes.push('ordered');
  if (caps.delay.kind !== 'none') modes.push('delayed');
  const behaviours: Behaviour[] = ['ack', 'slow', 'throw', 'throw', 'nack', 'dead-letter'];
  if (caps.delay.kind !== 'none') behaviours.push('nack-delay');
  const behaviour = fc.constantFrom(...behaviours);
  const script = fc
    // A hang costs a restart (a close deadline): about one script in 30 has one.
    .tuple(fc.array(behaviour, { maxLength: 4 }), w.hang ? fc.integer({ min: 0, max: 89 }).map((n) => (n < 3 ? n : null)) : fc.constant(null))
    .map(([s, hangAt]) => (hangAt === null ? s : [...s.slice(0, hangAt), 'hang' as const, ...s.slice(hangAt)]));
  // Printable text: what every broker's header/attribute rules accept (SQS refuses control characters).
  const headerValue = fc.string({ unit: fc.constantFrom('a', 'Z', '0', ' ', '-', 'é', 'ü', '✓', '中', '𝄞', '👩‍👧'), maxLength: 8 });
  const headerRoom = Math.max(0, Math.min(3, caps.maxHeaders - 6));
  const headerName = fc.constantFrom('tenant', 'h-a', 'h-b');
  const payloads: Array<fc.WeightedArbitrary<{ kind: string; body: Uint8Array }>> = [
    { weight: 3, arbitrary: fc.constant({ kind: 'empty', body: new Uint8Array(0) }) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 255 }).map((b) => ({ kind: 'one-byte', body: Uint8Array.of(b) })) },
    { weight: 3, arbitrary: fc.uint8Array({ minLength: 2, maxLength: 300 }).map((body) => ({ kind: 'binary', body })) },
    { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).map((s) => ({ kind: 'unicode', body: new TextEncoder().encode(s) })) },
  ];
  if (w.nearLimit) {
    payloads.push({
      weight: 1,
      arbitrary: fc.integer({ min: 0, max: 255 }).map((b) => ({ kind: 'near-limit', body: new Uint8Array(caps.maxMessageBytes - 1024).fill(b) })),
    });
  }
  const group = fc.record({
    maxAttempts: fc.constantFrom(1, 2, 3, 5, UNLIMITED),
    ordered: fc.boolean(),
    idempotent: fc.boolean(),
    concurrency: fc.integer({ min: 1, max: 4 }),
  });
  return fc
    .record({
      mode: fc.constantFrom(...modes),
      groups: fc.array(group, { minLength: 1, maxLength: w.maxGroups }),
      count: fc.integer({ min: 1, max: w.maxMessages }),
    })
    .chain(({ mode, groups, count }) =>
      fc.record({
        mode: fc.constant(mode),
        groups: fc.constant(groups.map((g) => ({ ...g, ordered: mode === 'ordered' && g.ordered }))),
        messages: fc.array(
          fc.record({
            payload: fc.oneof(...payloads),
            key: fc.option(fc.constantFrom('k0', 'k1'), { freq: 3 }),
            delayed: fc.boolean(),
            headers: fc.dictionary(headerName, headerValue, { maxKeys: headerRoom }),
            scripts: fc.array(script, { minLength: groups.length, maxLength: groups.length }),
            duplicate: fc.nat({ max: 3 }).map((n) => n === 0),
          }),
          { minLength: count, maxLength: count },
        ),
        restarts: w.restarts
          ? fc.array(fc.record({ after: fc.integer({ min: 1, max: count }), group: fc.nat({ max: groups.length - 1 }), newClient: fc.boolean() }), { maxLength: 2 })
          : fc.constant([]),
      }),
    )
    .map(({ mode, groups, messages, restarts }) => ({
      mode,
      groups,
      restarts,
      messages: messages.map((m) => ({
        body: m.payload.body,
        kind: m.payload.kind,
        key: m.key ?? undefined,
        delayMs: mode === 'delayed' && m.delayed ? w.delayMs : 0,
        headers: m.headers,
        scripts: m.scripts,
        duplicate: m.duplicate,
      })),
    }));
}

/** One delivery as seen by the outermost middleware. */
interface Observation {
  readonly ref: string;
  readonly group: number;
  readonly instance: number;
  readonly attempt: number;
  readonly start: number;
  /** When it began, ms since the case started (printed in failure trails). */
  readonly at: number;
  end: number;
  handlerRan: boolean;
  behaviour: Behaviour | undefined;
  threw: boolean;
  settlement: string | undefined;
  abandoned: boolean;
  /**
   * Still running when its subscription's close() began: its own settle may have been cut off by
   * the close deadline, so a redelivery after it is at-least-once, not a violation.
   */
  cutByClose: boolean;
}

interface DeadLetter {
  readonly ref: string;
  readonly group: number;
  readonly attempts: number;
  readonly reason: string;
  readonly body: Uint8Array;
}

/** Runs one case; returns the invariant violations found (empty when it conforms). */
export async function runModelCase(harness: ConformanceHarness, c: ModelCase, w: ModelWorkload): Promise<string[]> {
  const ctx = new ScenarioContext(harness);
  const violations: string[] = [];
  const probe = new TickProbe(10);
  let seq = 0;
  let runId = '';
  try {
    const topic = await ctx.topic({ ordered: c.mode === 'ordered', delayed: c.mode === 'delayed' });
    const publisher = await ctx.client();
    const groupNames = c.groups.map(() => ctx.group());
    const observations: Observation[] = [];
    const byDelivery = new WeakMap<Delivery<unknown>, Observation>();
    const effects = c.groups.map(() => new Map<string, number>());
    const dead: DeadLetter[] = [];
    const stores = c.groups.map(() => new MemoryDedupStore());
    /** Per subscription instance: the seq at which its close() resolved. */
    const closedAt: number[] = [];
    const expected = new Map<string, { message: number; copy: number; id: string }>();
    const publishedAt = new Map<string, number>();
    const caseStart = Date.now();
    runId = Math.random().toString(36).slice(2, 8);
    const refOf = (headers: Readonly<Record<string, string>>): string => headers['model-ref'] ?? '?';

    await ctx.subscribe(publisher, `${topic}-dlq`, {
      group: ctx.group(),
      codec: bytesCodec,
      concurrency: 8,
      handler: (d) => {
        const group = groupNames.indexOf(d.headers[HEADERS.originalGroup] ?? '');
        dead.push({ ref: refOf(d.headers), group, attempts: Number(d.headers[HEADERS.deadLetterAttempts]), reason: d.headers[HEADERS.deadLetterReason] ?? '', body: d.body });
      },
    });

    const subs: Array<{ sub: Subscription; instance: number }> = [];
    const open = async (g: number, client: Client): Promise<void> => {
      const plan = c.groups[g]!;
      const instance = closedAt.push(Infinity) - 1;
      const sub = await ctx.subscribe<Uint8Array>(client, topic, {
        group: groupNames[g]!,
        codec: bytesCodec,
        concurrency: plan.concurrency,
        ordered: plan.ordered,
        retry: { maxAttempts: plan.maxAttempts, initialDelayMs: w.backoffMs, maxDelayMs: w.backoffMs * 4, multiplier: 2, jitter: false },
        middleware: [
          async (d, next) => {
            const obs: Observation = { ref: refOf(d.headers), group: g, instance, attempt: d.attempt, start: ++seq, at: Date.now() - caseStart, end: 0, handlerRan: false, behaviour: undefined, threw: false, settlement: undefined, abandoned: false, cutByClose: false };
            if (obs.start > closedAt[instance]!) violations.push(`${obs.ref} group ${g}: handled (attempt ${d.attempt}) by a subscription whose close() had resolved`);
            observations.push(obs);
            byDelivery.set(d, obs);
            const want = expected.get(obs.ref);
            if (!want) violations.push(`group ${g}: a delivery that was never published (ref ${obs.ref}, id ${d.id})`);
            else if (want.id !== d.id) violations.push(`${obs.ref} group ${g}: id ${d.id}, published as ${want.id}`);
            else checkBody(violations, `${obs.ref} group ${g}`, d.body, c.messages[want.message]!);
            try {
              await next();
            } catch (err) {
              obs.threw = true;
              throw err;
            } finally {
              obs.settlement = d.settlement;
              obs.end = ++seq;
            }
          },
          ...(plan.idempotent ? [idempotent<Uint8Array>(stores[g]!)] : []),
        ],
        handler: async (d) => {
          const obs = byDelivery.get(d)!;
          const want = expected.get(obs.ref)!;
          obs.handlerRan = true;
          const b = c.messages[want.message]!.scripts[g]![d.attempt - 1] ?? 'ack';
          obs.behaviour = b;
          const effect = (): void => {
            effects[g]!.set(d.id, (effects[g]!.get(d.id) ?? 0) + 1);
          };
          switch (b) {
            case 'ack':
              effect();
              return;
            case 'slow':
              await pause(w.slowMs);
              effect();
              return;
            case 'throw':
              throw new Error('model: handler throws');
            case 'nack':
              await d.nack();
              return;
            case 'nack-delay':
              await d.nack({ delayMs: w.delayMs });
              return;
            case 'dead-letter':
              await d.deadLetter('model-dead');
              return;
            case 'hang':
              // Hangs until the subscription gives up on it, then fails as an aborted call would
              // (returning normally would tell idempotent() the effect happened).
              await new Promise<void>((resolve) => d.signal.addEventListener('abort', () => resolve(), { once: true }));
              obs.abandoned = true;
              throw d.signal.reason;
          }
        },
      });
      subs[g] = { sub, instance };
    };
    const restart = async (g: number, newClient: boolean): Promise<void> => {
      const { sub, instance } = subs[g]!;
      for (const o of observations) if (o.instance === instance && o.end === 0) o.cutByClose = true;
      await sub.close({ timeoutMs: w.closeTimeoutMs });
      closedAt[instance] = seq;
      await open(g, newClient ? await ctx.client() : publisher);
    };

    for (let g = 0; g < c.groups.length; g += 1) await open(g, publisher);

    // Publish in order (so per-key order is publish order), restarting subscriptions as planned.
    const publish = async (message: number, copy: number): Promise<void> => {
      const m = c.messages[message]!;
      const ref = `m${message}.${copy}`;
      const id = `model-${runId}-m${message}`;
      expected.set(ref, { message, copy, id });
      publishedAt.set(ref, Date.now());
      await publisher.publish(topic, m.body, { id, codec: bytesCodec, key: m.key, delayMs: m.delayMs || undefined, headers: { ...m.headers, 'model-ref': ref } });
    };
    let restarts = 0;
    for (let i = 0; i < c.messages.length; i += 1) {
      await publish(i, 0);
      for (const r of c.restarts.filter((x) => x.after === i + 1)) {
        restarts += 1;
        await restart(r.group, r.newClient);
      }
    }

    // Wait until every copy is settled in every group; restart groups whose handlers hang.
    /** A republished id on an ordered topic that no group saw: deduplicated by the broker, where allowed. */
    const deduplicated = (ref: string): boolean =>
      c.mode === 'ordered' &&
      expected.get(ref)!.copy > 0 &&
      Date.now() - publishedAt.get(ref)! > w.orderedRepublishDedupMs &&
      !observations.some((o) => o.ref === ref) &&
      !dead.some((d) => d.ref === ref);
    const refs = (): string[] => [...expected.keys()].filter((ref) => !deduplicated(ref));
    const state = (ref: string, g: number): Settled => settledState(ref, g, observations, dead, c.groups[g]!.maxAttempts);
    const allSettled = (): boolean => refs().every((ref) => c.groups.every((_, g) => state(ref, g) !== 'open'));
    const waitSettled = async (): Promise<boolean> => {
      const deadline = Date.now() + w.settleMs;
      while (!allSettled()) {
        if (Date.now() > deadline) return false;
        for (let g = 0; g < c.groups.length; g += 1) {
          const hung = observations.some((o) => o.group === g && o.instance === subs[g]!.instance && o.behaviour === 'hang' && o.end === 0);
          if (hung) {
            restarts += 1;
            await restart(g, false);
          }
        }
        await pause(w.pollMs);
      }
      return true;
    };
    let settled = await waitSettled();
    if (settled) {
      const dups = c.messages.flatMap((m, i) => (m.duplicate ? [i] : []));
      for (const i of dups) await publish(i, 1);
      if (dups.length > 0) settled = await waitSettled();
    }
    await pause(w.quietMs);
    if (!settled) {
      for (const ref of refs()) {
        for (let g = 0; g < c.groups.length; g += 1) {
          if (state(ref, g) === 'open') {
            const seen = observations.filter((o) => o.ref === ref && o.group === g);
            violations.push(`${ref} group ${g}: neither acked nor dead-lettered after ${w.settleMs} ms (lost or stuck); deliveries: ${describeTrail(seen)}`);
          }
        }
      }
    }
    checkInvariants(violations, c, observations, dead, effects, expected, restarts > 0);
    for (const { sub, instance } of subs) {
      await sub.close({ timeoutMs: w.closeTimeoutMs });
      closedAt[instance] = seq;
    }
    const beforeQuiet = observations.length;
    await pause(w.quietMs);
    if (observations.length > beforeQuiet) violations.push(`handled ${observations.length - beforeQuiet} deliveries after every close() resolved`);
  } catch (err) {
    violations.push(`the run threw: ${(err as Error)?.stack ?? String(err)}`);
  } finally {
    const drift = probe.stop();
    if (drift.maxGapMs > w.driftMs) violations.push(`event loop blocked: a 10 ms timer went ${drift.maxGapMs} ms without a tick (bound ${w.driftMs} ms)`);
    await ctx.cleanup();
  }
  if (violations.length > 0) violations.push(`(message ids model-${runId}-m<n>)`);
  return violations;
}

type Settled = 'open' | 'acked' | 'skipped' | 'dead';

/** Whether a copy is done in a group: acked by its handler, skipped as a duplicate, or dead-lettered (and arrived in the DLQ). */
function settledState(ref: string, g: number, observations: readonly Observation[], dead: readonly DeadLetter[], maxAttempts: number): Settled {
  if (dead.some((d) => d.ref === ref && d.group === g)) return 'dead';
  let last: Observation | undefined;
  for (const o of observations) if (o.ref === ref && o.group === g) last = o;
  if (!last || last.end === 0 || last.abandoned) return 'open';
  if (last.handlerRan) return last.behaviour === 'ack' || last.behaviour === 'slow' ? 'acked' : 'open';
  // Settled by a middleware without running the handler (idempotent() skipping a duplicate).
  return !last.threw && (last.settlement === undefined || last.settlement === 'ack') && last.attempt <= maxAttempts ? 'skipped' : 'open';
}

/** The deliveries of one copy in one group, the first and last few when there are many. */
function describeTrail(obs: readonly Observation[]): string {
  const shown = obs.length <= 12 ? obs.map(describeObs) : [...obs.slice(0, 4).map(describeObs), `... ${obs.length - 8} more ...`, ...obs.slice(-4).map(describeObs)];
  return `[${shown.join(', ')}]`;
}

/** `#attempt what (flags) @seconds-since-case-start/s<subscription instance>`. */
function describeObs(o: Observation): string {
  const what = o.abandoned ? 'abandoned' : o.handlerRan ? o.behaviour : `middleware:${o.threw ? 'threw' : (o.settlement ?? 'returned')}`;
  return `#${o.attempt} ${what}${o.end === 0 ? ' (running)' : ''}${o.cutByClose ? ' (cut by close)' : ''} @${(o.at / 1000).toFixed(1)}s/s${o.instance}`;
}

function checkBody(violations: string[], where: string, body: Uint8Array, m: MessagePlan): void {
  if (body.byteLength !== m.body.byteLength || !Buffer.from(body.buffer, body.byteOffset, body.byteLength).equals(Buffer.from(m.body))) {
    violations.push(`${where}: ${m.kind} body of ${body.byteLength} bytes differs from the ${m.body.byteLength} published`);
  }
}

/** The model: what must hold once every message is settled. */
function checkInvariants(
  violations: string[],
  c: ModelCase,
  observations: readonly Observation[],
  dead: readonly DeadLetter[],
  effects: ReadonlyArray<ReadonlyMap<string, number>>,
  expected: ReadonlyMap<string, { message: number; copy: number; id: string }>,
  restarted: boolean,
): void {
  for (const [ref, { message, id }] of expected) {
    const m = c.messages[message]!;
    c.groups.forEach((plan, g) => {
      const where = `${ref} group ${g} (maxAttempts ${plan.maxAttempts}${plan.ordered ? ', ordered' : ''}${plan.idempotent ? ', idempotent' : ''})`;
      const obs = observations.filter((o) => o.ref === ref && o.group === g);
      const trail = `deliveries: ${describeTrail(obs)}`;
      const letters = dead.filter((d) => d.ref === ref && d.group === g);
      // Attempts strictly increase; without restarts they are 1, 2, 3, ... exactly.
      const back = obs.findIndex((o, i) => i > 0 && o.attempt <= obs[i - 1]!.attempt);
      if (back > 0) violations.push(`${where}: attempt ${obs[back]!.attempt} after attempt ${obs[back - 1]!.attempt} (attempts must strictly increase); ${trail}`);
      if (!restarted && obs.some((o, i) => o.attempt !== i + 1)) violations.push(`${where}: attempts are not 1, 2, 3, ... without any restart; ${trail}`);
      // The handler never runs past maxAttempts.
      const past = obs.find((o) => o.handlerRan && o.attempt > plan.maxAttempts);
      if (past) violations.push(`${where}: handler ran at attempt ${past.attempt}; ${trail}`);
      // Nothing is handled after the delivery that settled it for good.
      const final = obs.findIndex((o) => o.handlerRan && !o.abandoned && !o.cutByClose && isFinal(o.behaviour!, o.attempt, plan.maxAttempts));
      if (final >= 0 && final < obs.length - 1) violations.push(`${where}: delivered again after attempt ${obs[final]!.attempt} settled it (${obs[final]!.behaviour}); ${trail}`);
      const last = final >= 0 ? obs[final] : undefined;
      const acked = last !== undefined && (last.behaviour === 'ack' || last.behaviour === 'slow');
      // At most one dead letter, and only when the model says so.
      // Dead-lettering is a publish then an ack: a close deadline between the two leaves a
      // second copy (at-least-once), so more than one is allowed only where the group restarted.
      if (letters.length > 1 && !restarted) violations.push(`${where}: dead-lettered ${letters.length} times; ${trail}`);
      const letter = letters[0];
      if (letter) {
        const at = obs.find((o) => o.attempt === letter.attempts);
        // A dead-letter cut off by a close deadline (copy published, ack refused) comes back: both are at-least-once.
        if (acked && !at?.cutByClose) violations.push(`${where}: dead-lettered although attempt ${last.attempt} acked; ${trail}`);
        checkBody(violations, `${where} (dead letter)`, letter.body, m);
        const explicit = at?.handlerRan === true && at.behaviour === 'dead-letter';
        if (explicit && letter.reason !== 'model-dead') violations.push(`${where}: deadLetter('model-dead') arrived with reason '${letter.reason}'`);
        if (!explicit && letter.attempts < plan.maxAttempts) violations.push(`${where}: dead-lettered at attempt ${letter.attempts} < maxAttempts ${plan.maxAttempts} without deadLetter(); ${trail}`);
        if (!explicit && at?.handlerRan && at.behaviour !== 'throw' && at.behaviour !== 'nack' && at.behaviour !== 'nack-delay') {
          violations.push(`${where}: dead-lettered at attempt ${letter.attempts} whose handler did ${at.behaviour}; ${trail}`);
        }
      } else if (last && !acked) {
        violations.push(`${where}: attempt ${last.attempt} (${last.behaviour}) must dead-letter, but nothing reached the DLQ; ${trail}`);
      }
      // A middleware that settles without the handler (idempotent() skipping) does so only for an id already done.
      for (const o of obs.filter((x) => !x.handlerRan && x.end !== 0 && !x.threw && (x.settlement === undefined || x.settlement === 'ack'))) {
        if (!plan.idempotent) violations.push(`${where}: acked attempt ${o.attempt} without running the handler; ${trail}`);
        else if ((effects[g]!.get(id) ?? 0) === 0) violations.push(`${where}: idempotent() acked attempt ${o.attempt} although no delivery of ${id} ever took effect (a handler's nack/deadLetter turned into a drop); ${trail}`);
      }
    });
  }
  // idempotent(): one effect per id. Without it: one per copy acked by its handler.
  c.groups.forEach((plan, g) => {
    for (const [id, n] of effects[g]!) {
      if (plan.idempotent && n > 1) violations.push(`group ${g} (idempotent): the effect of ${id} happened ${n} times`);
    }
  });
  // Per-key order on ordered groups: a key's next message starts after the one before it settled.
  c.groups.forEach((plan, g) => {
    if (!plan.ordered) return;
    const lastEndOfKey = new Map<string, { ref: string; end: number }>();
    c.messages.forEach((m, i) => {
      if (m.key === undefined) return;
      const obs = observations.filter((o) => o.ref === `m${i}.0` && o.group === g);
      if (obs.length === 0) return;
      const before = lastEndOfKey.get(m.key);
      const firstStart = Math.min(...obs.map((o) => o.start));
      if (before && firstStart < before.end) violations.push(`group ${g} (ordered): m${i}.0 of key ${m.key} started before ${before.ref} of the same key settled`);
      lastEndOfKey.set(m.key, { ref: `m${i}.0`, end: Math.max(...obs.map((o) => o.end || Infinity)) });
    });
  });
}

/** Whether a handler's behaviour at `attempt` ends the message's life in its group. */
function isFinal(b: Behaviour, attempt: number, maxAttempts: number): boolean {
  if (b === 'ack' || b === 'slow' || b === 'dead-letter') return true;
  if (b === 'hang') return false;
  return attempt >= maxAttempts;
}

/** A readable one-line-per-message summary of a case, for failure reports. */
export function describeCase(c: ModelCase): string {
  const groups = c.groups.map((g, i) => `  group ${i}: maxAttempts ${g.maxAttempts}, concurrency ${g.concurrency}${g.ordered ? ', ordered' : ''}${g.idempotent ? ', idempotent' : ''}`);
  const messages = c.messages.map(
    (m, i) =>
      `  m${i}: ${m.kind} ${m.body.byteLength} B${m.key ? `, key ${m.key}` : ''}${m.delayMs ? `, delay ${m.delayMs} ms` : ''}${m.duplicate ? ', published twice' : ''}, scripts ${m.scripts.map((s) => `[${s.join(' ')}]`).join(' ')}`,
  );
  const restarts = c.restarts.map((r) => `  after m${r.after - 1}: restart group ${r.group}${r.newClient ? ' on a new client' : ''}`);
  return [`mode ${c.mode}`, ...groups, ...messages, ...restarts].join('\n');
}

function replayCommand(seed: number, pathArg: string | undefined, title: string): string {
  const file = expect.getState().testPath;
  const rel = file ? path.relative(process.cwd(), file) : '<this test file>';
  const env = `MQKIT_MODEL_SEED=${seed}${pathArg ? ` MQKIT_MODEL_PATH=${pathArg}` : ''}`;
  return `(cd ${process.cwd()} && ${env} npx vitest run ${rel} -t '${title.replace(/'/g, '')}')`;
}

/** Runs `runs` generated cases from `seed` (or replays `pathArg`); throws a report on the first failure. */
export async function checkModel(
  harness: ConformanceHarness,
  params: { seed: number; runs: number; path?: string | undefined; shrink: boolean; workload: ModelWorkload; title: string; diagnostics?: ((runId: string) => readonly string[]) | undefined },
): Promise<void> {
  const { workload } = params;
  const property = fc.asyncProperty(modelCase(harness, workload), async (c) => {
    const violations = await runModelCase(harness, c, workload);
    if (violations.length > 0) throw new ModelViolation(violations);
  });
  const details = await fc.check(property, {
    seed: params.seed,
    numRuns: params.runs,
    endOnFailure: !params.shrink,
    ...(params.path !== undefined ? { path: params.path } : {}),
  });
  if (!details.failed) return;
  const error = details.errorInstance;
  const found = error instanceof ModelViolation ? error.violations : [String((error as Error)?.stack ?? error)];
  const casePath = details.counterexamplePath ?? undefined;
  throw new Error(
    [
      `mqkit model conformance failed on ${harness.name} (seed ${details.seed}, path ${casePath ?? '-'}, after ${details.numRuns} run(s), shrunk ${details.numShrinks} time(s)).`,
      `Replay: ${replayCommand(details.seed, casePath, params.title)}`,
      'Case:',
      details.counterexample ? describeCase(details.counterexample[0]) : '(none)',
      'Violations:',
      ...found.slice(0, 20).map((v) => `  - ${v}`),
      found.length > 20 ? `  ... and ${found.length - 20} more` : '',
      ...(params.diagnostics ? ['Logged for this case:', ...params.diagnostics(runIdOf(found)).slice(-40).map((l) => `  ${l}`)] : []),
    ].join('\n'),
  );
}

class ModelViolation extends Error {
  readonly violations: string[];
  constructor(violations: string[]) {
    super(violations.join('\n'));
    this.violations = violations;
  }
}

/** The workload for `harness` with `overrides` applied. */
export function modelWorkload(harness: ConformanceHarness, overrides: Partial<ModelWorkload> = {}): ModelWorkload {
  return { ...brokerWorkload(harness), ...overrides };
}

/** `MQKIT_MODEL_SEED` / `MQKIT_MODEL_PATH` when a failure is being replayed. */
export function replayFromEnv(): { seed: number; path: string | undefined } | undefined {
  const seed = process.env.MQKIT_MODEL_SEED;
  if (seed === undefined || seed === '') return undefined;
  const n = Number(seed);
  if (!Number.isInteger(n)) throw new Error(`MQKIT_MODEL_SEED must be an integer, got ${seed}`);
  return { seed: n, path: process.env.MQKIT_MODEL_PATH || undefined };
}

/** `MQKIT_MODEL_RUNS`, when set: how many generated cases a soak runs instead of the default. */
function soakRunsFromEnv(): number | undefined {
  const raw = process.env.MQKIT_MODEL_RUNS;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`MQKIT_MODEL_RUNS must be a positive integer, got ${raw}`);
  return n;
}

/**
 * Registers the model-based conformance sweep as vitest tests: `runs` generated cases (split over
 * `parallel` concurrent tests, seeds `seed`, `seed + 1`, ...), plus each regression seed (those
 * given and those in model-regressions.ts for this harness name). With
 * `MQKIT_MODEL_SEED` (and `MQKIT_MODEL_PATH`) set, only that case is run: the replay a failure
 * report prints; with `MQKIT_MODEL_RUNS=N`, N generated cases instead of `runs` (a soak).
 */
export function runModelConformance(harness: ConformanceHarness, options: ModelOptions = {}): void {
  const workload = modelWorkload(harness, options.workload);
  // MQKIT_MODEL_RUNS: a longer soak of the same sweep, run by hand (e.g. before a release).
  const runs = soakRunsFromEnv() ?? options.runs ?? 6;
  const parallel = Math.max(1, Math.min(options.parallel ?? 1, runs));
  const perTest = Math.ceil(runs / parallel);
  const timeoutFor = (n: number): number => n * (workload.settleMs * 2 + 10_000) + 30_000;
  const title = `mqkit model conformance: ${harness.name}`;
  const replay = replayFromEnv();
  describe(title, () => {
    if (replay) {
      it(`replays seed ${replay.seed}${replay.path ? ` path ${replay.path}` : ''}`, () => checkModel(harness, { ...replay, runs: perTest, shrink: options.shrink ?? false, workload, title, diagnostics: options.diagnostics }), timeoutFor(perTest));
      return;
    }
    const base = options.seed ?? Math.floor(Math.random() * 0x7fffffff);
    for (let i = 0; i < parallel; i += 1) {
      const n = Math.min(perTest, runs - i * perTest);
      if (n <= 0) break;
      const seed = (base + i) | 0;
      it.concurrent(`${n} generated cases (seed ${seed})`, () => checkModel(harness, { seed, runs: n, shrink: options.shrink ?? false, workload, title, diagnostics: options.diagnostics }), timeoutFor(n));
    }
    for (const r of [...(BROKER_REGRESSIONS[harness.name] ?? []), ...(options.regressions ?? [])]) {
      it(`regression seed ${r.seed}${r.path ? ` path ${r.path}` : ''}: ${r.note}`, () => checkModel(harness, { seed: r.seed, path: r.path, runs: r.path ? 1 : perTest, shrink: false, workload, title, diagnostics: options.diagnostics }), timeoutFor(perTest));
    }
  });
}

function runIdOf(violations: readonly string[]): string {
  for (const v of violations) {
    const m = /model-([a-z0-9]+)-m/.exec(v);
    if (m) return m[1]!;
  }
  return '';
}
