import { HandshakeParseError } from '../errors.js';
import { readVarint, varintSize } from './varint.js';

/**
 * A plain Uint8Array view of `bytes`. A Buffer's subarray and slice go through its species
 * constructor (slower), and Buffer#slice does not copy; plain views keep both predictable.
 */
export function asUint8Array(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A bounds-checked cursor over a byte range. Every read past `end` throws a
 * HandshakeParseError (code `quic-truncated` unless the caller names another), which the
 * public parse functions catch and return as an error result. Reads return views
 * (`subarray`), never copies.
 */
export class QuicReader {
  constructor(
    readonly bytes: Uint8Array,
    public pos: number,
    public end: number = bytes.length,
    /** Code used for reads past `end`. */
    readonly truncatedCode: string = 'quic-truncated',
  ) {}

  get remaining(): number {
    return this.end - this.pos;
  }

  fail(code: string, message: string, at: number = this.pos): HandshakeParseError {
    return HandshakeParseError.at(code, message, this.bytes, at);
  }

  private need(n: number, what: string): void {
    if (n > this.end - this.pos) throw this.fail(this.truncatedCode, `${what} runs past the end`);
  }

  u8(what = 'byte'): number {
    this.need(1, what);
    return this.bytes[this.pos++]!;
  }

  u32(what = 'uint32'): number {
    this.need(4, what);
    const b = this.bytes;
    const p = this.pos;
    this.pos = p + 4;
    return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  }

  varint(what = 'varint'): number {
    if (this.pos >= this.end) throw this.fail(this.truncatedCode, `${what} runs past the end`);
    const size = varintSize(this.bytes[this.pos]!);
    this.need(size, what);
    const value = readVarint(this.bytes, this.pos);
    this.pos += size;
    return value;
  }

  take(n: number, what = 'field'): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  skip(n: number, what = 'field'): void {
    this.need(n, what);
    this.pos += n;
  }
}
