import { describe, expect, it } from 'vitest';
import { connectionErrnoIn, isConnectionErrno } from './socket-errors.ts';

describe('isConnectionErrno', () => {
  it('knows the socket codes of a lost link, nothing else', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ERR_SOCKET_CLOSED', 'UND_ERR_SOCKET']) {
      expect(isConnectionErrno(code)).toBe(true);
    }
    for (const code of ['EACCES', 'ERR_TLS_CERT_ALTNAME_INVALID', '08006', 14, undefined, null]) expect(isConnectionErrno(code)).toBe(false);
  });
});

describe('connectionErrnoIn', () => {
  it('finds a socket code named in a message, as a whole word', () => {
    expect(connectionErrnoIn('14 UNAVAILABLE: No connection established. connect ECONNREFUSED 127.0.0.1:8081')).toBe('ECONNREFUSED');
    expect(connectionErrnoIn('read ECONNRESET')).toBe('ECONNRESET');
    expect(connectionErrnoIn('XECONNRESET2 or econnreset')).toBeUndefined();
    expect(connectionErrnoIn('socket hang up')).toBeUndefined();
  });
});
