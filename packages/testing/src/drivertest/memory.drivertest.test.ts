/** The driver-level entry point run on the memory driver: what a third-party adapter author runs. */
import { silentLogger } from '@mqkit/core/driver';
import { memory, memoryCapabilities } from '../index.ts';
import { uniqueName } from '../conformance/harness.ts';
import { runDriverConformance } from './index.ts';

const broker = uniqueName('drivertest');

// The model sweep over memory already runs in the conformance suite; here the scenarios show
// the driver-alone wiring works end to end.
runDriverConformance(
  {
    name: 'memory',
    capabilities: memoryCapabilities(),
    create: () => memory().create(`memory://${broker}`, {}, { logger: silentLogger }),
    timing: { deliveryMs: 2_000, redeliveryMs: 2_000, quietMs: 200 },
  },
  { model: false },
);
