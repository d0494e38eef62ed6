import type { Message } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { AckBatcher } from './acks.ts';

function fakeChannel() {
  const sent: Array<[tag: number, multiple: boolean]> = [];
  let closed = false;
  return {
    sent,
    close: () => {
      closed = true;
    },
    ack(message: Message, allUpTo?: boolean): void {
      if (closed) throw new Error('Channel closed');
      sent.push([message.fields.deliveryTag, allUpTo === true]);
    },
  };
}

const msg = (deliveryTag: number) => ({ fields: { deliveryTag } }) as unknown as Message;

function setup(first = 1, count = 10) {
  const ch = fakeChannel();
  const acks = new AckBatcher(ch, (err) => new Error(`lost: ${String(err)}`));
  for (let t = first; t < first + count; t += 1) acks.delivered(t);
  return { ch, acks };
}

describe('AckBatcher', () => {
  it('sends the acks of one tick as one multiple ack on the highest contiguous tag', async () => {
    const { ch, acks } = setup();
    const done = [acks.ack(msg(2)), acks.ack(msg(1)), acks.ack(msg(3))];
    expect(ch.sent).toEqual([]); // not before the next tick
    await Promise.all(done);
    expect(ch.sent).toEqual([[3, true]]);
  });

  it('never covers an unsettled tag: acks above a gap go one by one, at once', async () => {
    const { ch, acks } = setup();
    await Promise.all([acks.ack(msg(2)), acks.ack(msg(3))]); // 1 is still with its handler
    expect(ch.sent).toEqual([
      [2, false],
      [3, false],
    ]);
    await Promise.all([acks.ack(msg(1)), acks.ack(msg(4))]);
    // 1..4 settled now: one multiple ack on 4 (2 and 3 are already gone on the broker).
    expect(ch.sent.slice(2)).toEqual([[4, true]]);
  });

  it('lets the floor pass tags settled directly (nacks), but never uses one as the multiple-ack tag', async () => {
    const { ch, acks } = setup();
    acks.settled(3); // nacked
    await Promise.all([acks.ack(msg(1)), acks.ack(msg(2))]);
    expect(ch.sent).toEqual([[2, true]]);
    acks.settled(4);
    await acks.ack(msg(5));
    expect(ch.sent.slice(1)).toEqual([[5, true]]);
  });

  it('starts its floor at the first delivered tag', async () => {
    const { ch, acks } = setup(7);
    await Promise.all([acks.ack(msg(7)), acks.ack(msg(8))]);
    expect(ch.sent).toEqual([[8, true]]);
  });

  it('flush() sends at once (before a deliberate channel close)', async () => {
    const { ch, acks } = setup();
    const done = acks.ack(msg(1));
    acks.flush();
    expect(ch.sent).toEqual([[1, true]]);
    await done;
  });

  it('rejects the acks of a flush when the channel is gone by then', async () => {
    const { ch, acks } = setup();
    const a = acks.ack(msg(1));
    const b = acks.ack(msg(2));
    ch.close();
    await expect(a).rejects.toThrow(/lost/);
    await expect(b).rejects.toThrow(/lost/);
  });
});
