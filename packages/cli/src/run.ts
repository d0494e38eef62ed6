/**
 * The `mqkit` command line: argument parsing (commander) and the one place that turns an error
 * into a one-line message and an exit code. Runs in-process: `run(argv, io)` resolves the exit code.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { describeError, EXIT, exitCodeOf, type ExitCode } from './exit-codes.ts';
import type { CommandContext, GlobalFlags } from './context.ts';
import { processIo, type CliIo } from './io.ts';
import { dlqLs, dlqPurge, dlqReplay, dlqShow } from './commands/dlq.ts';
import { lag } from './commands/lag.ts';
import { health } from './commands/health.ts';
import { topology, type TopologyAction } from './commands/topology.ts';

const DEFAULT_TIMEOUT_MS = 30_000;

/** Loaded on use: only the outbox commands need pg. */
const outboxCommands = () => import('./commands/outbox.ts');

const positiveInt = (text: string): number => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number >= 1');
  return n;
};

/**
 * Runs the CLI with `argv` (without node and the script), writing to `io`; resolves the exit code
 * (see {@link EXIT}). Never throws.
 */
export async function run(argv: readonly string[], io: CliIo = processIo()): Promise<ExitCode> {
  let code: ExitCode = EXIT.OK;
  let json = argv.includes('--json');
  const program = new Command('mqkit')
    .description('Operate mqkit brokers: dead letters, lag, topology, outbox, health. The broker comes from --url or MQ_URL.')
    .option('--url <url>', 'broker URL (memory://, kafka://, amqp://, rocketmq://, sqs://, redis://); default $MQ_URL')
    .option('--json', 'print one JSON document (stable shape, see the README) instead of tables')
    .addOption(new Option('--timeout <ms>', 'deadline of the command').argParser(positiveInt).default(DEFAULT_TIMEOUT_MS))
    .exitOverride()
    .showHelpAfterError(false)
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: () => {}, outputError: () => {} });

  const act =
    <A extends unknown[]>(fn: (ctx: CommandContext, ...args: A) => Promise<ExitCode>) =>
    async (...args: unknown[]): Promise<void> => {
      const command = args[args.length - 1] as Command;
      const flags = command.optsWithGlobals<GlobalFlags & Record<string, unknown>>();
      json = flags.json === true;
      const own = command.opts();
      code = await fn({ io, flags }, ...([...args.slice(0, -2), own] as A));
    };

  program
    .command('health')
    .description('connect, publish and consume one message on a scratch topic; exit 0 healthy, 1 not')
    .option('--topic <topic>', 'scratch topic', 'mqkit-health')
    .option('--group <group>', 'scratch group', 'mqkit-health')
    .action(act((ctx, opts: unknown) => health(ctx, opts)));

  const dlq = program.command('dlq').description('dead-letter topics (<topic>-dlq): ls, show, replay, purge');
  dlq
    .command('ls [topic]')
    .description('dead-letter topics with depth, oldest age and counts by reason')
    .option('--group <group>', 'only messages dead-lettered by this group')
    .option('--scan <n>', 'messages read per topic to count reasons', positiveInt)
    .action(act((ctx, topic: string | undefined, opts: unknown) => dlqLs(ctx, topic, opts)));
  dlq
    .command('show <topic>')
    .description('messages with id, attempts, error, headers, payload preview, without consuming them')
    .option('--limit <n>', 'most messages shown', positiveInt)
    .option('--reason <reason>', 'only this dead-letter reason')
    .option('--group <group>', 'only messages dead-lettered by this group')
    .option('--scan <n>', 'messages read to find matches', positiveInt)
    .action(act((ctx, topic: string, opts: unknown) => dlqShow(ctx, topic, opts)));
  dlq
    .command('replay <topic>')
    .description('republish (reliable, same ids) and remove each message once the broker confirmed it')
    .option('--to <target>', '"original" (the topic each came from) or a topic', 'original')
    .option('--reason <reason>', 'only this dead-letter reason')
    .option('--group <group>', 'only messages dead-lettered by this group')
    .option('--limit <n>', 'most messages replayed', positiveInt)
    .option('--dry-run', 'list what would be replayed, change nothing')
    .option('--rate <n/s>', 'most messages per second')
    .option('--scan <n>', 'messages read per pass', positiveInt)
    .action(act((ctx, topic: string, opts: unknown) => dlqReplay(ctx, topic, opts)));
  dlq
    .command('purge <topic>')
    .description('delete every message of the dead-letter topic (needs --yes)')
    .option('--yes', 'really delete')
    .option('--group <group>', "that group's copy, where each group keeps one (SQS with SNS)")
    .action(act((ctx, topic: string, opts: unknown) => dlqPurge(ctx, topic, opts)));

  program
    .command('lag [topic]')
    .description('backlog per consumer group (per partition where the broker has them)')
    .option('--group <group>', 'only this group')
    .action(act((ctx, topic: string | undefined, opts: unknown) => lag(ctx, topic, opts)));

  const topologyCommand = program
    .command('topology')
    .description("topics, groups and dead-letter topics as client.declare() describes them (a JSON file of declarations, or --topic): plan, apply, verify");
  const topologyOptions = (c: Command): Command =>
    c
      .option('--topic <topic>', 'one topic instead of a file')
      .option('--group <group...>', 'its consumer groups')
      .option('--ordered', 'keyed messages consumed in order (RocketMQ FIFO, SQS .fifo, RabbitMQ single active consumer)')
      .option('--delayed', 'published with delayMs (RocketMQ DELAY topic)')
      .option('--transactional', 'published in transactions (RocketMQ TRANSACTION topic)')
      .option('--partitions <n>', 'partitions (Kafka) or queues (RocketMQ) when created', positiveInt)
      .option('--no-dead-letter', 'no <topic>-dlq');
  const topologyActions: ReadonlyArray<[TopologyAction, string]> = [
    ['plan', 'what apply would create, and what exists but does not fit; changes nothing'],
    ['apply', 'create what is missing, then check again (exit 1 if anything is still missing)'],
    ['verify', 'exit 0 when everything exists and fits, 1 when not (names what is missing)'],
  ];
  for (const [action, description] of topologyActions) {
    topologyOptions(topologyCommand.command(`${action} [file]`).description(description)).action(
      act((ctx, file: string | undefined, opts: unknown) => topology(ctx, action, file, opts)),
    );
  }

  const outbox = program.command('outbox').description('the PostgreSQL outbox (@mqkit/postgres): status, dead, retry');
  const outboxOptions = (c: Command): Command =>
    c.option('--db <url>', 'PostgreSQL URL; default $DATABASE_URL').option('--table <name>', 'outbox table', 'mqkit_outbox').option('--schema <name>', 'schema', 'public');
  outboxOptions(outbox.command('status').description('backlog, oldest pending age, dead rows')).action(act(async (ctx, opts: unknown) => (await outboxCommands()).outboxStatus(ctx, opts)));
  outboxOptions(outbox.command('dead').description('dead rows: id, topic, attempts, error'))
    .option('--limit <n>', 'most rows shown', positiveInt)
    .action(act(async (ctx, opts: unknown) => (await outboxCommands()).outboxDead(ctx, opts)));
  outboxOptions(outbox.command('retry').description('move dead rows back to the outbox for the relay'))
    .option('--limit <n>', 'most rows moved', positiveInt)
    .option('--id <id...>', 'only these rows')
    .action(act(async (ctx, opts: unknown) => (await outboxCommands()).outboxRetry(ctx, opts)));

  for (const c of [program, dlq, outbox, topologyCommand, ...program.commands, ...dlq.commands, ...outbox.commands, ...topologyCommand.commands]) {
    c.exitOverride().configureOutput({ writeOut: (s) => io.stdout(s), writeErr: () => {}, outputError: () => {} });
  }

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version' || err.exitCode === 0) return EXIT.OK;
      const message = err.message.replace(/^error:\s*/i, '');
      report(io, json, 'USAGE', `${message} (mqkit --help)`);
      return EXIT.BAD_INPUT;
    }
    const { code: errorCode, message } = describeError(err);
    report(io, json, errorCode, message);
    return exitCodeOf(err);
  }
}

/** What `--json` prints on stdout when a command fails (stderr has the same in one line). */
export interface ErrorDocument {
  ok: false;
  /** An MqError code (CONFIG, NOT_FOUND, UNSUPPORTED, CONNECTION, …) or USAGE for bad flags. */
  error: { code: string; message: string };
}

function report(io: CliIo, json: boolean, code: string, message: string): void {
  io.stderr(`mqkit: ${code}: ${message}\n`);
  const doc: ErrorDocument = { ok: false, error: { code, message } };
  if (json) io.stdout(`${JSON.stringify(doc, null, 2)}\n`);
}
