import { describe, expect, it } from 'vitest';
import { PushBuffer } from './push-buffer.ts';

describe('PushBuffer', () => {
  it('hands over up to max, in push order', async () => {
    const b = new PushBuffer<number>();
    [1, 2, 3].forEach((n) => b.push(n));
    expect(await b.take(2, new AbortController().signal)).toEqual([1, 2]);
    expect(await b.take(2, new AbortController().signal)).toEqual([3]);
  });

  it('waits for a push, and resolves empty on abort', async () => {
    const b = new PushBuffer<number>();
    const waiting = b.take(5, new AbortController().signal);
    b.push(7);
    expect(await waiting).toEqual([7]);
    const controller = new AbortController();
    const idle = b.take(5, controller.signal);
    controller.abort();
    expect(await idle).toEqual([]);
  });

  it('rejects with a failure once the items before it are taken', async () => {
    const b = new PushBuffer<number>();
    b.push(1);
    b.fail(new Error('channel lost'));
    expect(await b.take(5, new AbortController().signal)).toEqual([1]);
    await expect(b.take(5, new AbortController().signal)).rejects.toThrow('channel lost');
    b.push(2);
    expect(b.drain()).toEqual([2]);
  });

  it('extracts the matching items in order', () => {
    const b = new PushBuffer<number>();
    [1, 2, 3, 4].forEach((n) => b.push(n));
    expect(b.extract((n) => n % 2 === 0)).toEqual([2, 4]);
    expect(b.drain()).toEqual([1, 3]);
  });
});
