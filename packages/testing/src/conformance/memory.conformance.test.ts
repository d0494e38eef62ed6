import { connect } from '@mqkit/core';
import { memory, memoryCapabilities } from '../index.ts';
import { runConformance } from './index.ts';
import { uniqueName } from './harness.ts';

const broker = uniqueName('conformance');

runConformance({
  name: 'memory',
  capabilities: memoryCapabilities(),
  connect: () => connect(`memory://${broker}`, { adapters: [memory()] }),
});
