/**
 * Fault injection for the RabbitMQ suites: SIGKILL and restart the local broker through
 * `scripts/brokers/brokers.sh` (the only sanctioned way; ports are shared with other suites).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../src/resolve.ts';

const run = promisify(execFile);
const script = join(REPO_ROOT, 'scripts', 'brokers', 'brokers.sh');

async function brokers(...args: string[]): Promise<string> {
  const { stdout, stderr } = await run('bash', [script, ...args], { cwd: REPO_ROOT, timeout: 180_000 });
  return `${stdout}${stderr}`;
}

/** SIGKILL the broker (no clean shutdown: what a crash looks like to clients). */
export function killRabbitmq(): Promise<string> {
  return brokers('kill', 'rabbitmq');
}

/** Start it again on the same data and wait until it serves. */
export function restartRabbitmq(): Promise<string> {
  return brokers('restart', 'rabbitmq');
}

/** Kill, stay down for `downMs`, restart; always tries to restart, even when the kill failed. */
export async function crashAndRestart(downMs: number): Promise<{ downAt: number; upAt: number }> {
  let downAt: number;
  try {
    await killRabbitmq();
    downAt = Date.now();
    await new Promise((r) => setTimeout(r, downMs));
  } finally {
    await restartRabbitmq();
  }
  return { downAt, upAt: Date.now() };
}
