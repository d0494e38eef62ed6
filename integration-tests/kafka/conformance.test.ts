/**
 * The mqkit conformance suite against the real Kafka broker: topics with 3 partitions (plus the
 * `-dlq` topic) created through the admin client for every scenario.
 */
import { runConformance } from '@mqkit/testing/conformance';
import { afterAll } from 'vitest';
import { capabilities, closeAdmin, connectKafka, createTopic } from './harness.ts';

runConformance({
  name: 'kafka',
  capabilities,
  connect: () => connectKafka(),
  topic: () => createTopic('mqkit-conf'),
  // A group join takes ~0.1–3 s on a busy 2-core machine; delays must exceed the 250 ms precision.
  timing: { deliveryMs: 15_000, redeliveryMs: 15_000, quietMs: 1_000, testMs: 60_000, delayMs: 1_500 },
}, { model: { runs: 6 } }); // + the model-based sweep (small workloads), issue #16

afterAll(closeAdmin);
