/**
 * SIGSTOP / SIGCONT of a local broker's processes, for `*fault*` suites: a broker that stops
 * answering without closing its sockets (a hung process, a black-holed network), unlike a kill.
 * The brokers are shared with other suites and engineers, so a pause is short and always ends:
 * {@link withBrokerPaused} resumes in `finally`, on process exit, and through a detached watchdog
 * (`sleep N; kill -CONT`) that resumes the broker even if this process dies first.
 */
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './resolve.ts';

const run = promisify(execFile);

/** Most a pause may last; the watchdog resumes the broker then, whatever happens. */
export const MAX_PAUSE_MS = 15_000;

const paused = new Set<number>();

function resume(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone: nothing to resume
    }
    paused.delete(pid);
  }
}

process.once('exit', () => resume([...paused]));

/** The broker's process ids, from `scripts/brokers/brokers.sh status` (`pid 12,34`). */
export async function brokerPids(name: string): Promise<number[]> {
  const script = join(REPO_ROOT, 'scripts', 'brokers', 'brokers.sh');
  const { stdout } = await run('bash', [script, 'status', name], { cwd: REPO_ROOT, timeout: 60_000 }).catch(
    (err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }),
  );
  const line = stdout.split('\n').find((l) => l.startsWith(name));
  const match = /running\s+pid\s+([\d,]+)/.exec(line ?? '');
  if (!match) throw new Error(`${name} is not running as a local process (status: ${line ?? stdout.trim()})`);
  return match[1]!.split(',').map(Number);
}

/**
 * Runs `fn` while every process of the broker is stopped (SIGSTOP), then resumes them (SIGCONT),
 * also when `fn` throws. `maxMs` (≤ {@link MAX_PAUSE_MS}) bounds the pause even if `fn` hangs.
 */
export async function withBrokerPaused<T>(name: string, fn: () => Promise<T>, maxMs = MAX_PAUSE_MS): Promise<T> {
  const limit = Math.min(maxMs, MAX_PAUSE_MS);
  const pids = await brokerPids(name);
  // The watchdog first: once a process is stopped, nothing must be able to leave it stopped.
  const watchdog = spawn('sh', ['-c', `sleep ${Math.ceil(limit / 1000)}; kill -CONT ${pids.join(' ')} 2>/dev/null; true`], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.unref();
  const timer = setTimeout(() => resume(pids), limit);
  try {
    for (const pid of pids) {
      paused.add(pid);
      process.kill(pid, 'SIGSTOP');
    }
    return await fn();
  } finally {
    clearTimeout(timer);
    resume(pids);
    try {
      if (watchdog.pid !== undefined) process.kill(-watchdog.pid, 'SIGTERM'); // its own group (detached)
    } catch {
      // already done
    }
  }
}
