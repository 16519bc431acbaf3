import { TcpFlag } from './transport.js';

/** Bounds on one direction of a reassembled TCP stream. */
export interface TcpStreamLimits {
  /**
   * Bytes of the stream kept (delivered and waiting out of order together); later bytes are
   * dropped and `capped` is set. Default 1 MiB: handshakes need only the first few KB.
   */
  readonly maxBytes?: number;
  /**
   * Out-of-order pieces that may wait at once; further out-of-order segments are dropped (they
   * leave a hole). Default 8192: far above real traffic, and it keeps a hostile capture of tiny
   * reordered segments from costing quadratic time.
   */
  readonly maxPendingSegments?: number;
}

export const DEFAULT_TCP_STREAM_MAX_BYTES = 1024 * 1024;

interface Pending {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

const NOTHING: readonly Uint8Array[] = [];

/**
 * One direction of a TCP connection, put back in order by sequence number. Retransmitted bytes
 * are dropped, overlaps keep the bytes received first, out-of-order segments wait for the hole
 * before them to fill, and sequence numbers wrap at 2^32. Memory stays under `maxBytes`.
 *
 * Stream offset 0 is the byte after the SYN's sequence number, or, when no SYN was seen, the
 * sequence number of the first segment seen: bytes sent before that are unknowable.
 */
export class TcpStreamReassembler {
  readonly #maxBytes: number;
  readonly #maxPending: number;
  #base: number | null = null;
  readonly #chunks: Uint8Array[] = [];
  #delivered = 0;
  readonly #pending: Pending[] = [];
  #capped = false;
  #retransmittedBytes = 0;
  #sawSyn = false;
  #sawFin = false;
  #droppedSegments = 0;

  constructor(limits: TcpStreamLimits = {}) {
    this.#maxBytes = limits.maxBytes ?? DEFAULT_TCP_STREAM_MAX_BYTES;
    this.#maxPending = limits.maxPendingSegments ?? 8192;
  }

  /** The sequence number of stream offset 0, once known. */
  get initialSequence(): number | null {
    return this.#base;
  }
  /** Contiguous bytes delivered so far. */
  get length(): number {
    return this.#delivered;
  }
  /** True when bytes were dropped for `maxBytes`. */
  get capped(): boolean {
    return this.#capped;
  }
  /** Stream offset of the first missing byte before data that arrived out of order and still waits; null if none. */
  get gapAt(): number | null {
    return this.#pending.length > 0 ? this.#delivered : null;
  }
  /** Bytes received again that had already been delivered or were waiting. */
  get retransmittedBytes(): number {
    return this.#retransmittedBytes;
  }
  /** Out-of-order segments dropped because `maxPendingSegments` were already waiting. */
  get droppedSegments(): number {
    return this.#droppedSegments;
  }
  get sawSyn(): boolean {
    return this.#sawSyn;
  }
  get sawFin(): boolean {
    return this.#sawFin;
  }

  /** The contiguous stream so far, as one array (a copy when it came in several segments). */
  bytes(): Uint8Array {
    if (this.#chunks.length === 1) return this.#chunks[0]!;
    const out = new Uint8Array(this.#delivered);
    let at = 0;
    for (const chunk of this.#chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    this.#chunks.splice(0, this.#chunks.length, out);
    return out;
  }

  /**
   * Takes one segment of this direction. Returns the bytes that became contiguous because of it
   * (in order; empty when it filled nothing), so callers can stream.
   */
  push(seq: number, flags: number, payload: Uint8Array): readonly Uint8Array[] {
    if (flags & TcpFlag.RST) return NOTHING;
    let dataSeq = seq >>> 0;
    if (flags & TcpFlag.SYN) {
      this.#sawSyn = true;
      dataSeq = (dataSeq + 1) >>> 0;
    }
    this.#base ??= dataSeq;
    if (flags & TcpFlag.FIN) this.#sawFin = true;
    if (payload.length === 0) return NOTHING;

    const expected = (this.#base + this.#delivered) >>> 0;
    // Signed 32-bit distance from the next expected byte: correct across sequence wrap-around.
    let offset = this.#delivered + ((dataSeq - expected) | 0);
    let end = offset + payload.length;
    if (end <= this.#delivered) {
      this.#retransmittedBytes += payload.length;
      return NOTHING;
    }
    if (offset < this.#delivered) {
      this.#retransmittedBytes += this.#delivered - offset;
      payload = payload.subarray(this.#delivered - offset);
      offset = this.#delivered;
    }
    if (end > this.#maxBytes) {
      this.#capped = true;
      if (offset >= this.#maxBytes) return NOTHING;
      payload = payload.subarray(0, this.#maxBytes - offset);
      end = this.#maxBytes;
    }
    if (offset > this.#delivered) {
      if (this.#pending.length >= this.#maxPending) {
        this.#droppedSegments++;
        return NOTHING;
      }
      this.#hold(offset, payload);
      return NOTHING;
    }
    const out: Uint8Array[] = [];
    this.#deliver(payload, out);
    this.#drain(out);
    return out;
  }

  #deliver(bytes: Uint8Array, out: Uint8Array[]): void {
    this.#chunks.push(bytes);
    this.#delivered += bytes.length;
    out.push(bytes);
  }

  /** Delivers waiting segments that now touch the contiguous stream, trimming what is already there. */
  #drain(out: Uint8Array[]): void {
    const pending = this.#pending;
    let taken = 0;
    while (taken < pending.length && pending[taken]!.offset <= this.#delivered) {
      const next = pending[taken++]!;
      const skip = this.#delivered - next.offset;
      if (skip < next.bytes.length) this.#deliver(next.bytes.subarray(skip), out);
      else this.#retransmittedBytes += next.bytes.length;
    }
    if (taken > 0) pending.splice(0, taken);
  }

  /**
   * Keeps an out-of-order piece, cut around the pieces already waiting (first received wins).
   * Waiting pieces are sorted and disjoint, so a binary search finds the first one it can touch:
   * a capture of many tiny out-of-order segments costs O(log n) per segment, not O(n).
   */
  #hold(offset: number, bytes: Uint8Array): void {
    const pending = this.#pending;
    const end = offset + bytes.length;
    let first = 0;
    let last = pending.length;
    while (first < last) {
      const middle = (first + last) >>> 1;
      const piece = pending[middle]!;
      if (piece.offset + piece.bytes.length <= offset) first = middle + 1;
      else last = middle;
    }
    const merged: Pending[] = [];
    let at = offset;
    let i = first;
    for (; i < pending.length && pending[i]!.offset < end; i++) {
      const piece = pending[i]!;
      const pieceEnd = piece.offset + piece.bytes.length;
      if (piece.offset > at)
        merged.push({ offset: at, bytes: bytes.subarray(at - offset, piece.offset - offset) });
      merged.push(piece);
      this.#retransmittedBytes += Math.min(end, pieceEnd) - Math.max(at, piece.offset);
      at = Math.max(at, pieceEnd);
    }
    if (at < end) merged.push({ offset: at, bytes: bytes.subarray(at - offset) });
    pending.splice(first, i - first, ...merged);
  }
}
