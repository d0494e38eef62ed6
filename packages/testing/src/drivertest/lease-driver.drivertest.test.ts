/**
 * The README's small lease driver through the driver-level suite, the scenarios and the model
 * sweep: core's lease paths (extension, expiry, refused stale receipts) under the whole suite.
 */
import { LEASE_DRIVER_CAPABILITIES, LeaseBroker, LeaseDriver } from './lease-driver.ts';
import { runDriverConformance } from './index.ts';

const broker = new LeaseBroker();

runDriverConformance(
  {
    name: 'lease (README example)',
    capabilities: LEASE_DRIVER_CAPABILITIES,
    create: async () => new LeaseDriver(broker, 1_000),
    topology: false, // the README's minimal driver has no declare/verify step
    timing: { deliveryMs: 3_000, redeliveryMs: 4_000, quietMs: 300, delayMs: 500 },
  },
  { model: { runs: 3 } },
);
