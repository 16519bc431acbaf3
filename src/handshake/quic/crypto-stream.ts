import { HandshakeParseError } from '../errors.js';
import { asUint8Array } from './reader.js';

/** Default bound of one direction's Initial CRYPTO stream: far above any real ClientHello. */
export const DEFAULT_MAX_CRYPTO_BYTES = 64 * 1024;
/** Default bound on the number of holes an out-of-order CRYPTO stream may have at once. */
export const DEFAULT_MAX_CRYPTO_GAPS = 64;

const HANDSHAKE_HEADER_LENGTH = 4;
const EMPTY = new Uint8Array(0);
const INITIAL_CAPACITY = 2048;

/**
 * Reassembles one encryption level's CRYPTO stream from frames that may arrive out of order,
 * repeat or overlap (RFC 9000, 19.6), and cuts the in-order prefix into TLS handshake messages
 * (type, 3-byte length, body). Memory is bounded: data past `maxBytes` or more than `maxGaps`
 * holes at once is an error (`quic-crypto-buffer-exceeded`, `quic-crypto-fragmented`), as is
 * a handshake message that could never fit. Bytes already in order are never rewritten.
 */
export class CryptoStream {
  private buffer: Uint8Array = EMPTY;
  /** Bytes [0, contiguous) have all arrived. */
  private contiguous = 0;
  /** Bytes [0, delivered) have been cut into messages. */
  private delivered = 0;
  /** Received ranges past `contiguous`, as sorted, disjoint, non-adjacent [start, end) pairs. */
  private ranges: number[] = [];
  /** Messages cut on the in-order fast path, not yet taken. */
  private ready: Uint8Array[] = [];

  constructor(
    readonly maxBytes: number = DEFAULT_MAX_CRYPTO_BYTES,
    readonly maxGaps: number = DEFAULT_MAX_CRYPTO_GAPS,
  ) {}

  /** Length of the in-order prefix received so far. */
  get contiguousLength(): number {
    return this.contiguous;
  }

  /** Highest offset received so far (in order or not). */
  get highestOffset(): number {
    return this.ranges.length > 0 ? this.ranges[this.ranges.length - 1]! : this.contiguous;
  }

  /**
   * Checks that `data` at `offset` may be stored; returns the error that `write` would raise,
   * without changing anything.
   */
  check(offset: number, data: Uint8Array): HandshakeParseError | undefined {
    return this.checkAll([{ offset, data }]);
  }

  /**
   * Checks that all `frames`, written in turn, may be stored, without changing anything: lets
   * a caller accept or refuse a whole packet's CRYPTO frames at once.
   */
  checkAll(
    frames: readonly { readonly offset: number; readonly data: Uint8Array }[],
  ): HandshakeParseError | undefined {
    let contiguous = this.contiguous;
    let ranges: readonly number[] = this.ranges;
    for (const { offset, data } of frames) {
      const end = offset + data.length;
      if (end > this.maxBytes) {
        return HandshakeParseError.at(
          'quic-crypto-buffer-exceeded',
          `CRYPTO data up to offset ${end} exceeds the ${this.maxBytes}-byte bound`,
          data,
          0,
        );
      }
      if (end <= contiguous || data.length === 0) continue;
      // In order, with nothing buffered ahead: no hole can appear.
      if (offset <= contiguous && ranges.length === 0) {
        contiguous = end;
        continue;
      }
      const merged = mergeRange(ranges, Math.max(offset, contiguous), end);
      if (merged[0] === contiguous) {
        contiguous = merged[1]!;
        merged.splice(0, 2);
      }
      if (merged.length / 2 > this.maxGaps) {
        return HandshakeParseError.at(
          'quic-crypto-fragmented',
          `CRYPTO stream has more than ${this.maxGaps} holes`,
          data,
          0,
        );
      }
      ranges = merged;
    }
    return undefined;
  }

  /** Stores `data` at `offset`; returns the error (leaving the stream unchanged) if it may not be stored. */
  write(offset: number, data: Uint8Array): HandshakeParseError | undefined {
    const problem = this.check(offset, data);
    if (problem !== undefined) return problem;
    const end = offset + data.length;
    if (end <= this.contiguous || data.length === 0) return undefined;
    data = asUint8Array(data);
    const start = Math.max(offset, this.contiguous);
    if (start === this.contiguous && this.ranges.length === 0) {
      this.appendInOrder(data.subarray(start - offset), end);
      return undefined;
    }
    this.reserve(end);
    this.buffer.set(data.subarray(start - offset), start);
    const ranges = mergeRange(this.ranges, start, end);
    if (ranges[0] === this.contiguous) {
      this.contiguous = ranges[1]!;
      ranges.splice(0, 2);
    }
    this.ranges = ranges;
    return undefined;
  }

  /**
   * The common case: the next bytes, nothing buffered ahead. Complete messages are cut straight
   * from `data`, and only an unfinished one is copied into the buffer.
   */
  private appendInOrder(data: Uint8Array, end: number): void {
    if (this.delivered === this.contiguous) {
      let at = 0;
      while (data.length - at >= HANDSHAKE_HEADER_LENGTH) {
        const messageEnd =
          at + HANDSHAKE_HEADER_LENGTH + ((data[at + 1]! << 16) | (data[at + 2]! << 8) | data[at + 3]!);
        if (messageEnd > data.length) break;
        this.ready.push(data.slice(at, messageEnd));
        at = messageEnd;
      }
      this.delivered += at;
      data = data.subarray(at);
    }
    if (data.length > 0) {
      this.reserve(end);
      this.buffer.set(data, end - data.length);
    }
    this.contiguous = end;
  }

  private reserve(end: number): void {
    if (end <= this.buffer.length) return;
    const capacity = Math.min(
      this.maxBytes,
      Math.max(end, Math.min(INITIAL_CAPACITY, 2 * end), this.buffer.length * 2),
    );
    const grown = new Uint8Array(capacity);
    grown.set(this.buffer.subarray(0, this.highestOffset));
    this.buffer = grown;
  }

  /**
   * The complete handshake messages that became available since the last call, each a copy
   * (type, 3-byte length, body). Returns an error when the next message announces a length
   * that cannot fit within `maxBytes`.
   */
  takeMessages(): Uint8Array[] | HandshakeParseError {
    const messages = this.ready;
    this.ready = [];
    const buffer = this.buffer;
    while (this.contiguous - this.delivered >= HANDSHAKE_HEADER_LENGTH) {
      const at = this.delivered;
      const bodyLength = (buffer[at + 1]! << 16) | (buffer[at + 2]! << 8) | buffer[at + 3]!;
      const end = at + HANDSHAKE_HEADER_LENGTH + bodyLength;
      if (end > this.maxBytes) {
        this.ready = messages;
        return HandshakeParseError.at(
          'quic-crypto-buffer-exceeded',
          `handshake message of ${bodyLength} bytes exceeds the ${this.maxBytes}-byte CRYPTO bound`,
          buffer.subarray(0, this.contiguous),
          at,
        );
      }
      if (end > this.contiguous) break;
      messages.push(buffer.slice(at, end));
      this.delivered = end;
    }
    return messages;
  }
}

/** Inserts [start, end) into sorted disjoint ranges, merging overlapping or adjacent ones; returns a new array. */
function mergeRange(ranges: readonly number[], start: number, end: number): number[] {
  const out: number[] = [];
  let i = 0;
  while (i < ranges.length && ranges[i + 1]! < start) {
    out.push(ranges[i]!, ranges[i + 1]!);
    i += 2;
  }
  let mergedStart = start;
  let mergedEnd = end;
  while (i < ranges.length && ranges[i]! <= mergedEnd) {
    mergedStart = Math.min(mergedStart, ranges[i]!);
    mergedEnd = Math.max(mergedEnd, ranges[i + 1]!);
    i += 2;
  }
  out.push(mergedStart, mergedEnd);
  while (i < ranges.length) {
    out.push(ranges[i]!, ranges[i + 1]!);
    i += 2;
  }
  return out;
}
