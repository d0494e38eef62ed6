/**
 * Server bug apache/rocketmq#9583 (5.3.3 and 5.5.0): after `changeInvisibleDuration`, an ack with
 * the new receipt handle answers OK but the message is redelivered anyway. The broker matches the
 * ack against the pop checkpoint by the handle's first field (start offset), which the renewal
 * rewrote; field 7 still carries the original. Acking with field 0 set back to field 7 removes the
 * message for real (verified against 5.3.3, non-FIFO topics).
 */
export function ackHandle(receiptHandle: string): string {
  const fields = receiptHandle.split(' ');
  if (fields.length < 8 || fields[7] === undefined) return receiptHandle;
  fields[0] = fields[7];
  return fields.join(' ');
}
