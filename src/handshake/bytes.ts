/**
 * Small byte helpers shared by the parsers. Callers bounds-check before reading.
 */
import { failed, HandshakeParseError, type ParseResult } from './errors.js';

export const EMPTY = new Uint8Array(0);

export function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

export function u24(b: Uint8Array, o: number): number {
  return (b[o] << 16) | (b[o + 1] << 8) | b[o + 2];
}

export function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** Decodes bytes one char per byte (lossless for any byte string, ASCII unchanged). */
export function latin1(b: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(b[i]);
  return s;
}

const utf8Decoder = new TextDecoder('utf-8');

/** Decodes UTF-8 (invalid sequences become U+FFFD), with a fast path for ASCII. */
export function utf8(b: Uint8Array, start: number, end: number): string {
  for (let i = start; i < end; i++) {
    if (b[i] >= 0x80) return utf8Decoder.decode(b.subarray(start, end));
  }
  return latin1(b, start, end);
}

/** Lower-case hex of a byte range. */
export function toHex(b: Uint8Array, start = 0, end = b.length): string {
  const s = Math.max(0, Math.min(start, b.length));
  const e = Math.max(s, Math.min(end, b.length));
  return Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('hex');
}

/** Shorthand for a failed ParseResult pointing at `offset` of `bytes`. */
export function fail(code: string, message: string, bytes: Uint8Array, offset: number): ParseResult<never> {
  return failed(HandshakeParseError.at(code, message, bytes, offset));
}
