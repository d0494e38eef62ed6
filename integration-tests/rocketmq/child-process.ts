/**
 * A separate process the fault suites can SIGKILL: a consumer that hangs in its handler, or a
 * producer that sends half messages and dies before deciding. Run with
 * `node --conditions=mqkit-source child-process.ts <mode> <json args>`; it reports progress as
 * JSON lines on stdout.
 */
import { connect } from '@mqkit/core';
import { rocketmq } from '@mqkit/rocketmq';

interface Args {
  url: string;
  options: Record<string, unknown>;
  topic: string;
  group?: string;
  ids?: string[];
}

const [mode, raw] = process.argv.slice(2);
const args = JSON.parse(raw ?? '{}') as Args;
const say = (event: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(event)}\n`);
};

const client = await connect(args.url, { adapters: [rocketmq()], options: args.options });

if (mode === 'hang-consumer') {
  await client.subscribe(args.topic, {
    group: args.group ?? 'unset',
    handler: (d) => {
      say({ event: 'handling', id: d.id, attempt: d.attempt, at: Date.now() });
      return new Promise<void>(() => {}); // never finishes: the process is killed here
    },
  });
  say({ event: 'subscribed' });
} else if (mode === 'half-then-crash') {
  for (const id of args.ids ?? []) {
    void client.transaction(async (tx) => {
      await tx.publish(args.topic, { id }, { id });
      say({ event: 'half-sent', id });
      await new Promise<void>(() => {}); // the local transaction never ends: no commit, no rollback
    });
  }
} else {
  say({ event: 'error', message: `unknown mode ${mode}` });
  process.exit(2);
}
