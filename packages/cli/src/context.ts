/** What every command gets: the global flags and where to write. */
import type { CliIo } from './io.ts';

/** Flags every command takes. */
export interface GlobalFlags {
  readonly url?: string | undefined;
  readonly json?: boolean | undefined;
  /** Deadline of the whole command, in ms. */
  readonly timeout: number;
}

export interface CommandContext {
  readonly io: CliIo;
  readonly flags: GlobalFlags;
}

/** Writes the JSON document with `--json`, else the human text. */
export function output<T>(ctx: CommandContext, json: T, human: () => string): void {
  if (ctx.flags.json) ctx.io.stdout(`${JSON.stringify(json, null, 2)}\n`);
  else ctx.io.stdout(human());
}
