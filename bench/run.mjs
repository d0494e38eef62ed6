#!/usr/bin/env node
// `pnpm bench [kafka|rabbitmq|rocketmq|sqs|redis ...] [--n N] [--size BYTES] [--reps R] [--only TEXT] [--list]`
// Entry point: the harness is TypeScript (erasable syntax only) run by Node >= 24's type stripping.
// It re-executes itself once with `--conditions=mqkit-source` so that scenarios importing the
// workspace packages (@mqkit/*) get their TypeScript sources, as tsconfig's customConditions do.
import { spawn } from 'node:child_process';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(`bench: needs Node >= 24 (this is ${process.version}); run \`source scripts/toolchain.sh && mqkit_toolchain\` first`);
  process.exit(2);
}

if (!process.execArgv.some((a) => a.includes('mqkit-source'))) {
  const child = spawn(process.execPath, ['--conditions=mqkit-source', ...process.execArgv, import.meta.filename, ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, sig) => process.exit(code ?? (sig ? 1 : 0)));
} else {
  const { main } = await import('./src/main.ts');
  process.exitCode = await main(process.argv.slice(2));
}
