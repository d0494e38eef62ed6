import { describe, expect, it } from 'vitest';
import { delayQueueOptions, deliveryLimitArgument, effectiveDeliveryLimit, existingDeliveryLimit } from './topology.ts';

/** amqplib's error for a refused queue.declare, as RabbitMQ 3.10.8 words it. */
function refusal(text: string): Error {
  return Object.assign(new Error(`Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "${text}"`), { code: 406 });
}

describe('native delivery limit', () => {
  it('unlimited is no argument on RabbitMQ 3.x (-1 there dead-letters on the first return) and -1 on 4.x (no argument = 20)', () => {
    expect(deliveryLimitArgument(Number.POSITIVE_INFINITY, 3)).toBeUndefined();
    expect(deliveryLimitArgument(Number.POSITIVE_INFINITY, 4)).toBe(-1);
    expect(deliveryLimitArgument(50, 3)).toBe(50);
    expect(effectiveDeliveryLimit(undefined, 3)).toBe(Number.POSITIVE_INFINITY);
    expect(effectiveDeliveryLimit(undefined, 4)).toBe(20);
    expect(effectiveDeliveryLimit(-1, 4)).toBe(Number.POSITIVE_INFINITY);
    expect(effectiveDeliveryLimit(-1, 3)).toBe(0);
    expect(effectiveDeliveryLimit(20, 3)).toBe(20);
  });

  it('reads the existing limit from a 406 inequivalent-arg refusal', () => {
    expect(existingDeliveryLimit(refusal("PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue 'q' in vhost '/': received '30' but current is '20'"))).toBe(20);
    expect(
      existingDeliveryLimit(refusal("PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue 'q' in vhost '/': received none but current is the value '20' of type 'byte'")),
    ).toBe(20);
    expect(existingDeliveryLimit(refusal("PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue 'q' in vhost '/': received the value '-1' of type 'signedint' but current is none"))).toBeNull();
    expect(existingDeliveryLimit(refusal("PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': received 'classic' but current is 'quorum'"))).toBeUndefined();
    expect(existingDeliveryLimit(new Error('socket closed'))).toBeUndefined();
  });

  it('delay queues: quorum, at-least-once dead-lettering (which needs reject-publish) into the group queue only', () => {
    expect(delayQueueOptions('orders.billing')).toEqual({
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': 'orders.billing',
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
      },
    });
  });
});
