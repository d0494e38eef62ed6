import { describe, expect, it } from 'vitest';
import { bytesCodec, textCodec } from './codec.ts';

describe('codecs round-trip exactly', () => {
  it('textCodec keeps a leading byte-order mark (it was stripped on decode)', () => {
    const text = '\uFEFFhéllo ✓ 𝄞\u0000';
    expect(textCodec.decode(textCodec.encode(text))).toBe(text);
  });

  it('bytesCodec keeps every byte value and 0 bytes', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect([...bytesCodec.decode(bytesCodec.encode(all))]).toEqual([...all]);
    expect(bytesCodec.decode(bytesCodec.encode(new Uint8Array(0))).byteLength).toBe(0);
  });
});
