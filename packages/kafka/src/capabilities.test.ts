import { describe, expect, it } from 'vitest';
import { kafkaCapabilities } from './capabilities.ts';

describe('kafkaCapabilities', () => {
  it('declares ordered sends, except when sends first wait for topic declaration', () => {
    expect(kafkaCapabilities(1 << 20, 500).orderedSends).toBe(true);
    expect(kafkaCapabilities(1 << 20, 500, true).orderedSends).toBe(false);
  });
});
