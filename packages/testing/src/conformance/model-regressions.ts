import type { ModelRegression } from './model.ts';

/**
 * Model cases that failed on a real broker, by harness name: {@link runModelConformance} runs
 * them on that broker every time, before the new random ones. A seed and path replay the same
 * case only as long as the generator in model.ts (and the broker workload) is unchanged; when it
 * changes, drop the entries whose defect is fixed and re-find the others.
 */
export const BROKER_REGRESSIONS: Readonly<Record<string, readonly ModelRegression[]>> = {
  kafka: [
    {
      seed: 871692540,
      path: '0',
      note: 'a handler hanging past the close deadline comes back with attempt 1 after every restart, never reaching the DLQ (#16 defect 4)',
    },
    {
      seed: 2133756594,
      path: '1',
      note: 'a message acked (handler done before close() began) is delivered again with attempt 1 after the subscription restarts: the ack did not survive close (did not reproduce on replay)',
    },
  ],
  rabbitmq: [
    {
      seed: 1840716781,
      path: '1',
      note: 'a delayed message (mode delayed, idempotent group, restart on a new client) was delivered twice per attempt: #1, #1, #2, #2 (did not reproduce on replay)',
    },
    {
      seed: 1575887686,
      path: '24',
      note: 'ordered, maxAttempts Infinity, a hang at attempt 3 and restarts: the redelivery after the close came back as attempt 2 (#1, #2, #3 abandoned, #2, ...)',
    },
    {
      seed: 1575887691,
      path: '0',
      note: 'ordered + idempotent, a restart while attempt 2 (nack) was in flight: attempt 2 delivered twice (#1, #2, #2, #3)',
    },
    {
      seed: 1575887693,
      path: '4',
      note: 'a delivery abandoned at the close deadline comes back with the same attempt (#2 abandoned, #2 abandoned): a close is not counted',
    },
  ],
  rocketmq: [
    {
      seed: 292957443,
      path: '3',
      note: 'FIFO topic, unordered group, maxAttempts 1, nack() then two restarts: neither acked nor dead-lettered within 75 s',
    },
    {
      seed: 1197249615,
      path: '4',
      note: 'a message received while a subscription closed was given back; the restarted group on a new client saw the raw broker count (#2 first), then the old client corrected it to #2 again: attempts went backwards (the attempt ledger is now one per process)',
    },
    {
      seed: 1496463186,
      path: '7',
      note: 'ordered FIFO + idempotent, two restarts: a message acked at attempt 1 came back four times (each acked by idempotent(), attempts 2-5); copies of a message this process acked are now acked without reaching core (did not reproduce on replay)',
    },
  ],
  'sqs (queue mode, ElasticMQ)': [
    {
      seed: 1619350509,
      path: '1',
      note: 'an id republished on a FIFO queue is dropped by SQS deduplication (5 min): accepted through orderedRepublishDedupMs',
    },
  ],
};
