/**
 * DTLS record layer (RFC 6347 4.1, RFC 9147 4) and handshake fragment headers (RFC 6347 4.2.2).
 * A datagram carries one or more whole records; a record never spans datagrams.
 */
import { fail, u16, u24 } from '../bytes.js';
import { done, type ParseResult } from '../errors.js';

export const DTLS_RECORD_HEADER = 13;
export const DTLS_HANDSHAKE_HEADER = 12;
/** Content type given to DTLS 1.3 unified-header records (always encrypted). */
export const CONTENT_DTLS13_CIPHERTEXT = 0x20;

/** One DTLS record: its header fields and a view of its fragment. */
export interface DtlsRecord {
  /** 20-26 for DTLSPlaintext/DTLSCiphertext records; CONTENT_DTLS13_CIPHERTEXT for DTLS 1.3 unified headers. */
  readonly contentType: number;
  /** Record version (0xfeff, 0xfefd, 0x0100); 0 for DTLS 1.3 unified headers. */
  readonly version: number;
  /** Full epoch, or for unified headers its two low bits. */
  readonly epoch: number;
  /** 48-bit sequence number (a JS number holds it exactly); for unified headers its 8 or 16 low bits. */
  readonly sequence: number;
  /** Offset of the record header in the datagram. */
  readonly offset: number;
  /** The record payload: a view into the datagram. */
  readonly fragment: Uint8Array;
}

/** Most records accepted in one datagram. */
const MAX_RECORDS_PER_DATAGRAM = 64;

/**
 * Splits a datagram into its records. A record cut short by the end of the datagram is an
 * error (datagrams do not continue). Error offsets are offsets in the datagram.
 */
export function splitDtlsRecords(datagram: Uint8Array): ParseResult<DtlsRecord[]> {
  const records: DtlsRecord[] = [];
  const n = datagram.length;
  let o = 0;
  while (o < n) {
    if (records.length === MAX_RECORDS_PER_DATAGRAM)
      return fail('too-many-records', 'too many records', datagram, o);
    const b0 = datagram[o];
    if ((b0 & 0xe0) === 0x20) {
      const r = unifiedRecord(datagram, o);
      if (r.status !== 'done') return r;
      records.push(r.value);
      o += r.consumed;
      continue;
    }
    if (n - o < DTLS_RECORD_HEADER)
      return fail('truncated', 'record header cut by the datagram end', datagram, o);
    if (b0 < 20 || b0 > 26) return fail('bad-content-type', `record content type ${b0}`, datagram, o);
    const version = u16(datagram, o + 1);
    if (version !== 0xfeff && version !== 0xfefd && version !== 0x0100) {
      return fail('bad-record-version', `record version 0x${version.toString(16)}`, datagram, o + 1);
    }
    const epoch = u16(datagram, o + 3);
    const sequence = u16(datagram, o + 5) * 0x100000000 + u32At(datagram, o + 7);
    const length = u16(datagram, o + 11);
    const start = o + DTLS_RECORD_HEADER;
    if (start + length > n) return fail('truncated', 'record cut by the datagram end', datagram, o + 11);
    records.push({
      contentType: b0,
      version,
      epoch,
      sequence,
      offset: o,
      fragment: datagram.subarray(start, start + length),
    });
    o = start + length;
  }
  return done(records, n);
}

function u32At(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** RFC 9147 4: 001CSLEE, then an optional CID, 8 or 16 sequence bits and an optional length. */
function unifiedRecord(d: Uint8Array, o: number): ParseResult<DtlsRecord> {
  const b0 = d[o];
  const n = d.length;
  if (b0 & 0x10) {
    // The CID length was negotiated and cannot be known here: the record runs to the end.
    return done(
      {
        contentType: CONTENT_DTLS13_CIPHERTEXT,
        version: 0,
        epoch: b0 & 3,
        sequence: 0,
        offset: o,
        fragment: d.subarray(o + 1),
      },
      n - o,
    );
  }
  const seqLen = b0 & 0x08 ? 2 : 1;
  const hasLength = (b0 & 0x04) !== 0;
  let p = o + 1;
  if (p + seqLen + (hasLength ? 2 : 0) > n)
    return fail('truncated', 'unified header cut by the datagram end', d, o);
  const sequence = seqLen === 2 ? u16(d, p) : d[p];
  p += seqLen;
  let end = n;
  if (hasLength) {
    end = p + 2 + u16(d, p);
    p += 2;
    if (end > n) return fail('truncated', 'record cut by the datagram end', d, p - 2);
  }
  return done(
    {
      contentType: CONTENT_DTLS13_CIPHERTEXT,
      version: 0,
      epoch: b0 & 3,
      sequence,
      offset: o,
      fragment: d.subarray(p, end),
    },
    end - o,
  );
}

/** One handshake message fragment (RFC 6347 4.2.2). */
export interface DtlsHandshakeFragment {
  readonly msgType: number;
  /** Length of the whole message body. */
  readonly length: number;
  readonly messageSeq: number;
  readonly fragmentOffset: number;
  readonly fragmentLength: number;
  /** The fragment bytes: a view. */
  readonly fragment: Uint8Array;
}

/**
 * Splits the payload of a handshake record into its handshake fragments. Error offsets are
 * offsets in `payload`.
 */
export function splitDtlsHandshakeFragments(payload: Uint8Array): ParseResult<DtlsHandshakeFragment[]> {
  const out: DtlsHandshakeFragment[] = [];
  const n = payload.length;
  let o = 0;
  while (o < n) {
    if (n - o < DTLS_HANDSHAKE_HEADER)
      return fail('truncated', 'handshake header cut by the record end', payload, o);
    const length = u24(payload, o + 1);
    const fragmentOffset = u24(payload, o + 6);
    const fragmentLength = u24(payload, o + 9);
    if (fragmentOffset + fragmentLength > length) {
      return fail('bad-fragment', 'fragment runs past the message length', payload, o + 6);
    }
    const start = o + DTLS_HANDSHAKE_HEADER;
    if (start + fragmentLength > n)
      return fail('truncated', 'fragment cut by the record end', payload, o + 9);
    out.push({
      msgType: payload[o],
      length,
      messageSeq: u16(payload, o + 4),
      fragmentOffset,
      fragmentLength,
      fragment: payload.subarray(start, start + fragmentLength),
    });
    o = start + fragmentLength;
  }
  return done(out, n);
}
