/** Child processes and broker kill/restart for the RocketMQ fault suites. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../src/resolve.ts';

const run = promisify(execFile);

/** A child started from child-process.ts, with its JSON-line events. */
export interface Child {
  readonly process: ChildProcess;
  readonly events: Array<Record<string, unknown>>;
  /** Resolves with the first event matching `predicate` (rejects after `timeoutMs`). */
  waitFor(predicate: (event: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>>;
  kill(): Promise<void>;
}

export function startChild(mode: string, args: Record<string, unknown>): Child {
  const child = spawn(process.execPath, ['--conditions=mqkit-source', '--no-warnings', join(import.meta.dirname, 'child-process.ts'), mode, JSON.stringify(args)], {
    cwd: join(REPO_ROOT, 'integration-tests'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: Array<Record<string, unknown>> = [];
  const listeners = new Set<() => void>();
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      return;
    }
    for (const l of listeners) l();
  });
  return {
    process: child,
    events,
    waitFor(predicate, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const found = events.find(predicate);
          if (!found) return false;
          listeners.delete(check);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`child ${mode}: no matching event within ${timeoutMs} ms; events=${JSON.stringify(events)} stderr=${stderr}`));
        }, timeoutMs);
        if (!check()) listeners.add(check);
        child.once('exit', (code) => {
          if (listeners.has(check)) {
            listeners.delete(check);
            clearTimeout(timer);
            reject(new Error(`child ${mode} exited (${code}) early; stderr=${stderr}`));
          }
        });
      });
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function brokers(...args: string[]): Promise<string> {
  const { stdout, stderr } = await run('bash', [join(REPO_ROOT, 'scripts', 'brokers', 'brokers.sh'), ...args], {
    cwd: REPO_ROOT,
    timeout: 300_000,
  });
  return `${stdout}${stderr}`;
}

/** SIGKILLs the RocketMQ processes (namesrv + proxy/broker). */
export const killRocketmq = (): Promise<string> => brokers('kill', 'rocketmq');
/** Starts RocketMQ again on the same data and waits until it serves. */
export const restartRocketmq = (): Promise<string> => brokers('restart', 'rocketmq');
