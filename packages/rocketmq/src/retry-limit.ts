/**
 * RocketMQ moves a message to the group's `%DLQ%<group>` after the group's `retryMaxTimes`
 * redeliveries (16 unless the group was created otherwise), whatever the consumer's retry policy.
 * That native guard must never fire before core's `maxAttempts`: the adapter declares the group
 * with enough retries, or refuses the subscription when it cannot.
 */

/** RocketMQ's default `retryMaxTimes` of a consumer group (auto-created ones included). */
export const DEFAULT_GROUP_RETRIES = 16;

/**
 * What the adapter declares for `maxAttempts: Infinity`: a billion redeliveries (decades at one a
 * second), far enough below 2^31 that the broker's int arithmetic on it cannot overflow.
 */
export const UNLIMITED_GROUP_RETRIES = 1_000_000_000;

/**
 * The `retryMaxTimes` a group needs for core's `maxAttempts` to come first: two above it, as for
 * SQS's redrive, so that a delivery arriving past `maxAttempts` (a consumer that crashed while
 * handling it) still reaches core, which dead-letters it with its diagnostic headers.
 */
export function groupRetriesFor(maxAttempts: number): number {
  return Number.isFinite(maxAttempts) ? Math.min(UNLIMITED_GROUP_RETRIES, maxAttempts + 2) : UNLIMITED_GROUP_RETRIES;
}
