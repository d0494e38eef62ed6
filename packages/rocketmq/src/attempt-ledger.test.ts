import { describe, expect, it } from 'vitest';
import { AttemptLedger } from './attempt-ledger.ts';

describe('AttemptLedger', () => {
  it('takes the broker count when it is sound', () => {
    const ledger = new AttemptLedger();
    expect(ledger.attempt('m', 1)).toBe(1);
    expect(ledger.attempt('m', 2)).toBe(2);
    expect(ledger.attempt('m', 5)).toBe(5);
  });

  // Ordered FIFO lanes (issue #16, found by an integration test): successors given back behind a
  // nacked message gain broker attempts without a handler run.
  it('leaves out deliveries given back unhandled', () => {
    const ledger = new AttemptLedger();
    ledger.givenBack('s');
    ledger.givenBack('s');
    expect(ledger.attempt('s', 3)).toBe(1);
    expect(ledger.attempt('s', 4)).toBe(2);
  });

  // The proxy handed a nacked FIFO message over again with the same deliveryAttempt.
  it('never hands the same attempt twice: a repeated broker count still moves on', () => {
    const ledger = new AttemptLedger();
    expect(ledger.attempt('m', 1)).toBe(1);
    expect(ledger.attempt('m', 1)).toBe(2);
    expect(ledger.attempt('m', 2)).toBe(3);
  });

  it('forgets a message once acked, and stays bounded', () => {
    const ledger = new AttemptLedger(2);
    ledger.attempt('a', 1);
    ledger.settled('a');
    expect(ledger.attempt('a', 1)).toBe(1);
    ledger.attempt('b', 1);
    ledger.attempt('c', 1);
    expect(ledger.size).toBeLessThanOrEqual(2);
  });
});
