/**
 * The mqkit conformance suite against the real RocketMQ 5 proxy: every capability the adapter
 * claims is exercised here. Topics are typed per scenario (FIFO for ordered, DELAY for delayed,
 * TRANSACTION for transactional), each with a NORMAL `${topic}-dlq`.
 */
import { ROCKETMQ_CAPABILITIES } from '@mqkit/rocketmq';
import { runConformance } from '@mqkit/testing/conformance';
import { connectRocketmq, freshTopic, INVISIBLE_MS } from './mqkit-support.ts';

runConformance({
  name: 'rocketmq',
  capabilities: ROCKETMQ_CAPABILITIES,
  connect: () => connectRocketmq(),
  topic: (needs) => freshTopic('conf', needs.ordered ? 'FIFO' : needs.delayed ? 'DELAY' : needs.transactional ? 'TRANSACTION' : 'NORMAL'),
  timing: {
    deliveryMs: 15_000,
    // A dead consumer's message returns after the invisible duration (close() gives it back sooner).
    redeliveryMs: INVISIBLE_MS + 5_000,
    quietMs: 1_500,
    testMs: 90_000,
    // Above the broker's timer precision (1 s ticks).
    delayMs: 3_000,
  },
}, { model: { runs: 6 } }); // + the model-based sweep (small workloads), issue #16
