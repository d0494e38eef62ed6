/** Starts a worker script (plain Node, TypeScript stripped) and waits for its READY line. */
import { spawn, type ChildProcess } from 'node:child_process';

export interface Worker {
  readonly child: ChildProcess;
  readonly output: string[];
  /** Resolves with the exit signal/code. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startWorker(script: string, env: Record<string, string>, readyTimeoutMs = 60_000): Promise<Worker> {
  const child = spawn(process.execPath, ['--conditions=mqkit-source', '--no-warnings', new URL(script, import.meta.url).pathname], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  let onReady: (() => void) | undefined;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  const collect = (chunk: Buffer): void => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      output.push(line);
      if (line.startsWith('READY')) onReady?.();
    }
    if (output.length > 200) output.splice(0, output.length - 200);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const timer = setTimeout(() => child.kill('SIGKILL'), readyTimeoutMs);
  const first = await Promise.race([ready.then(() => 'ready' as const), exited.then(() => 'exited' as const)]);
  clearTimeout(timer);
  if (first === 'exited') throw new Error(`worker ${script} exited before READY:\n${output.join('\n')}`);
  return {
    child,
    output,
    exited,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
