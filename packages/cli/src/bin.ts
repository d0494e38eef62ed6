#!/usr/bin/env node
/** The `mqkit` executable. */
import { run } from './run.ts';

// kafkajs 2.2 arms timers with negative durations on Node >= 24 (TimeoutNegativeWarning): harmless
// for a short-lived command, but printed it would break the promise of one line on stderr.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name !== 'TimeoutNegativeWarning') process.stderr.write(`${warning.name}: ${warning.message}\n`);
});

process.exitCode = await run(process.argv.slice(2));
