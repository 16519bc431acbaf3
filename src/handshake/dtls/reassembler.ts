/**
 * Reassembles DTLS handshake messages from fragments that arrive in any order, repeated or
 * overlapping (RFC 6347 4.2.3), with bounded memory. Fed a datagram at a time; a bad datagram
 * is reported and dropped without disturbing the state.
 */
import { fail } from '../bytes.js';
import { done, type ParseResult } from '../errors.js';
import { type DtlsHandshakeFragment, splitDtlsHandshakeFragments, splitDtlsRecords } from './records.js';

const CONTENT_HANDSHAKE = 22;

/** A whole handshake message. `body` is a view: into the datagram when it came in one piece. */
export interface DtlsHandshakeMessage {
  readonly msgType: number;
  readonly messageSeq: number;
  readonly body: Uint8Array;
  /** Record version of the record that brought the first fragment seen. */
  readonly recordVersion: number;
}

export interface DtlsReassemblerOptions {
  /** Largest message body accepted (default 64 KiB). */
  readonly maxMessageLength?: number;
  /** Most messages being assembled at once (default 4). */
  readonly maxPendingMessages?: number;
  /** Most disjoint byte ranges one message may have (default 128). */
  readonly maxRangesPerMessage?: number;
}

interface Pending {
  readonly msgType: number;
  readonly messageSeq: number;
  readonly recordVersion: number;
  readonly buf: Uint8Array;
  /** Sorted, disjoint, non-adjacent [start, end) pairs, flattened. */
  ranges: number[];
}

/** How many completed message_seq values are remembered, to drop retransmissions. */
const COMPLETED_MEMORY = 32;

/** Puts DTLS handshake messages back together from fragments in any order, bounded in messages, bytes and ranges; retransmissions of completed messages are dropped. */
export class DtlsHandshakeReassembler {
  private readonly maxMessageLength: number;
  private readonly maxPending: number;
  private readonly maxRanges: number;
  private readonly pending = new Map<number, Pending>();
  private readonly completed: number[] = [];

  constructor(options: DtlsReassemblerOptions = {}) {
    this.maxMessageLength = options.maxMessageLength ?? 65536;
    this.maxPending = options.maxPendingMessages ?? 4;
    this.maxRanges = options.maxRangesPerMessage ?? 128;
  }

  /** Bytes held for messages still incomplete. */
  get bufferedBytes(): number {
    let n = 0;
    for (const p of this.pending.values()) n += p.buf.length;
    return n;
  }

  /**
   * Feeds a datagram: every epoch-0 handshake record in it. Returns the messages it completed,
   * in order, or an error for this datagram (the state is left as it was before the bad part).
   */
  pushDatagram(datagram: Uint8Array): ParseResult<DtlsHandshakeMessage[]> {
    const records = splitDtlsRecords(datagram);
    if (records.status !== 'done') return records;
    const out: DtlsHandshakeMessage[] = [];
    for (const record of records.value) {
      if (record.contentType !== CONTENT_HANDSHAKE || record.epoch !== 0) continue;
      const fragments = splitDtlsHandshakeFragments(record.fragment);
      if (fragments.status !== 'done') return fragments;
      for (const f of fragments.value) {
        const r = this.pushFragment(f, record.version);
        if (r.status === 'error') return r;
        if (r.status === 'done' && r.value) out.push(r.value);
      }
    }
    return done(out, datagram.length);
  }

  /** Feeds one fragment; returns the message when it completes it, else null. */
  pushFragment(f: DtlsHandshakeFragment, recordVersion = 0): ParseResult<DtlsHandshakeMessage | null> {
    const seq = f.messageSeq;
    if (this.completed.includes(seq)) return done(null, f.fragmentLength); // retransmission
    if (f.length > this.maxMessageLength) {
      return fail('message-too-large', `handshake message of ${f.length} bytes`, f.fragment, 0);
    }
    let p = this.pending.get(seq);
    if (!p) {
      if (f.fragmentOffset === 0 && f.fragmentLength === f.length) {
        // The common case: an unfragmented message, handed out without a copy.
        this.complete(seq);
        return done(
          { msgType: f.msgType, messageSeq: seq, body: f.fragment, recordVersion },
          f.fragmentLength,
        );
      }
      if (this.pending.size >= this.maxPending) {
        return fail('too-many-messages', 'too many handshake messages in reassembly', f.fragment, 0);
      }
      p = { msgType: f.msgType, messageSeq: seq, recordVersion, buf: new Uint8Array(f.length), ranges: [] };
      this.pending.set(seq, p);
    } else if (p.msgType !== f.msgType || p.buf.length !== f.length) {
      return fail(
        'fragment-mismatch',
        'fragment disagrees with earlier fragments on type or length',
        f.fragment,
        0,
      );
    }
    const start = f.fragmentOffset;
    const end = start + f.fragmentLength;
    if (start === end) return done(null, 0);
    // Bytes already held must agree: a fragment rewriting them is an attack or a bug.
    const r = p.ranges;
    for (let i = 0; i < r.length; i += 2) {
      const a = Math.max(start, r[i]);
      const b = Math.min(end, r[i + 1]);
      for (let k = a; k < b; k++) {
        if (p.buf[k] !== f.fragment[k - start]) {
          return fail('inconsistent-fragment', 'overlapping fragments disagree', f.fragment, k - start);
        }
      }
    }
    const merged = mergeRange(r, start, end);
    if (merged.length > 2 * this.maxRanges)
      return fail('too-many-fragments', 'message in too many pieces', f.fragment, 0);
    p.buf.set(f.fragment, start);
    p.ranges = merged;
    if (merged.length === 2 && merged[0] === 0 && merged[1] === p.buf.length) {
      this.pending.delete(seq);
      this.complete(seq);
      return done(
        { msgType: p.msgType, messageSeq: seq, body: p.buf, recordVersion: p.recordVersion },
        f.fragmentLength,
      );
    }
    return done(null, f.fragmentLength);
  }

  private complete(seq: number): void {
    this.completed.push(seq);
    if (this.completed.length > COMPLETED_MEMORY) this.completed.shift();
  }
}

/** Inserts [start, end) into sorted disjoint ranges, merging overlapping and adjacent ones. */
function mergeRange(ranges: readonly number[], start: number, end: number): number[] {
  const out: number[] = [];
  let s = start;
  let e = end;
  let placed = false;
  for (let i = 0; i < ranges.length; i += 2) {
    const a = ranges[i];
    const b = ranges[i + 1];
    if (b < s) out.push(a, b);
    else if (a > e) {
      if (!placed) {
        out.push(s, e);
        placed = true;
      }
      out.push(a, b);
    } else {
      s = Math.min(s, a);
      e = Math.max(e, b);
    }
  }
  if (!placed) out.push(s, e);
  return out;
}
