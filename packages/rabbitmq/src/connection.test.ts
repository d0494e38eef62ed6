import { describe, expect, it } from 'vitest';
import { corkFrameWrites } from './connection.ts';

function fakeConnection(pass: (log: string[]) => void) {
  const log: string[] = [];
  const connection = {
    stream: {
      corked: 0,
      cork() {
        this.corked += 1;
        log.push('cork');
      },
      uncork() {
        this.corked -= 1;
        log.push('uncork');
      },
    },
    muxer: {
      _readIncoming() {
        pass(log);
      },
    },
  };
  return { connection, log };
}

describe('corkFrameWrites', () => {
  it("corks the socket for exactly one muxer pass, so that pass's frames leave in one write", () => {
    const { connection, log } = fakeConnection((l) => l.push('write', 'write'));
    corkFrameWrites(connection);
    connection.muxer._readIncoming();
    connection.muxer._readIncoming();
    expect(log).toEqual(['cork', 'write', 'write', 'uncork', 'cork', 'write', 'write', 'uncork']);
    expect(connection.stream.corked).toBe(0);
  });

  it('uncorks even when the pass throws', () => {
    const { connection } = fakeConnection(() => {
      throw new Error('boom');
    });
    corkFrameWrites(connection);
    expect(() => connection.muxer._readIncoming()).toThrow('boom');
    expect(connection.stream.corked).toBe(0);
  });

  it('leaves connections without the expected internals alone', () => {
    expect(() => corkFrameWrites(undefined)).not.toThrow();
    const odd = { stream: {}, muxer: { _readIncoming: () => {} } };
    const before = odd.muxer._readIncoming;
    corkFrameWrites(odd);
    expect(odd.muxer._readIncoming).toBe(before);
  });
});
