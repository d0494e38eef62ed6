import { MqError } from './errors.ts';

/**
 * Turns payloads into bytes and back. The codec's `contentType` travels in the `content-type`
 * header, so a consumer can tell how a message was written.
 */
export interface Codec<T = unknown> {
  /** MIME type recorded on every message this codec encodes. */
  readonly contentType: string;
  /** Encodes a payload; throws when the payload cannot be represented. */
  encode(payload: T): Uint8Array;
  /** Decodes bytes written by {@link Codec.encode}. */
  decode(bytes: Uint8Array): T;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
/** Keeps a leading U+FEFF: text must come back exactly as it was published. */
const exactDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** JSON in UTF-8: the default codec. `undefined`, functions, BigInt and cycles are rejected. */
export const jsonCodec: Codec<unknown> = {
  contentType: 'application/json',
  encode(payload) {
    const text = JSON.stringify(payload);
    if (text === undefined) throw new TypeError(`JSON cannot represent a payload of type ${typeof payload}`);
    return encoder.encode(text);
  },
  decode(bytes) {
    return JSON.parse(decoder.decode(bytes)) as unknown;
  },
};

/** Bytes as they are: for payloads the application serialises itself. */
export const bytesCodec: Codec<Uint8Array> = {
  contentType: 'application/octet-stream',
  encode(payload) {
    if (!(payload instanceof Uint8Array)) throw new TypeError('bytesCodec encodes Uint8Array payloads only');
    return payload;
  },
  decode(bytes) {
    return bytes;
  },
};

/** UTF-8 text. */
export const textCodec: Codec<string> = {
  contentType: 'text/plain; charset=utf-8',
  encode(payload) {
    if (typeof payload !== 'string') throw new TypeError('textCodec encodes strings only');
    return encoder.encode(payload);
  },
  decode(bytes) {
    return exactDecoder.decode(bytes);
  },
};

/** Encodes with `codec`, turning any failure into an INVALID_MESSAGE error. */
export function encodePayload<T>(codec: Codec<T>, payload: T, context: Record<string, unknown>): Uint8Array {
  try {
    return codec.encode(payload);
  } catch (err) {
    throw new MqError('INVALID_MESSAGE', `payload cannot be encoded as ${codec.contentType}: ${(err as Error).message}`, {
      cause: err,
      details: context,
    });
  }
}
