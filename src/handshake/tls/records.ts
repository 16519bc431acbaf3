/**
 * TLS record layer reader (RFC 8446 5.1, RFC 5246 6.2): an incremental state machine fed with
 * TCP segments as they arrive, yielding whole handshake messages reassembled across records
 * and segments, and the other records as they are.
 */
import { EMPTY, fail, u16, u24 } from '../bytes.js';
import { done, needMore, type ParseResult } from '../errors.js';

export const CONTENT_CHANGE_CIPHER_SPEC = 20;
export const CONTENT_ALERT = 21;
export const CONTENT_HANDSHAKE = 22;
export const CONTENT_APPLICATION_DATA = 23;
export const CONTENT_HEARTBEAT = 24;

export const HANDSHAKE_CLIENT_HELLO = 1;
export const HANDSHAKE_SERVER_HELLO = 2;
export const HANDSHAKE_HELLO_VERIFY_REQUEST = 3;
export const HANDSHAKE_CERTIFICATE = 11;

/** Record header length. */
export const TLS_RECORD_HEADER = 5;
/** Largest record fragment: 2^14 plus the TLS 1.2 ciphertext expansion allowance. */
export const TLS_MAX_RECORD_LENGTH = 16384 + 2048;

/** One item read from a TLS byte stream. Byte fields are views, valid until you reuse the input. */
export type TlsStreamItem =
  | {
      readonly kind: 'handshake';
      readonly msgType: number;
      /** The message body, after the 4-byte handshake header. */
      readonly body: Uint8Array;
      /** Version field of the record that carried the first byte of the message. */
      readonly recordVersion: number;
    }
  | {
      /** A non-handshake record, or any record after ChangeCipherSpec (it is encrypted then). */
      readonly kind: 'record';
      readonly contentType: number;
      readonly version: number;
      readonly fragment: Uint8Array;
    };

export interface TlsRecordReaderOptions {
  /** Largest handshake message accepted, body length (default 64 KiB). */
  readonly maxMessageLength?: number;
  /** Most bytes held unread before the reader gives up (default 256 KiB). */
  readonly maxBuffered?: number;
}

/**
 * Incremental TLS record reader. `push()` the stream's bytes in any split, then `read()` until
 * it says need-more. Errors are sticky. Plaintext records only: once a ChangeCipherSpec record
 * went by, later records are returned as opaque `record` items, since they are encrypted, but
 * for a whole ClientHello or ServerHello in one record: TLS 1.3's compatibility
 * ChangeCipherSpec (RFC 8446 D.4) precedes the plaintext hellos that follow a HelloRetryRequest.
 */
export class TlsRecordReader {
  private readonly maxMessageLength: number;
  private readonly maxBuffered: number;
  // Unread stream bytes: buf[start, end). Either the caller's chunk (not owned) or our copy.
  private buf: Uint8Array = EMPTY;
  private start = 0;
  private end = 0;
  private owned = false;
  // Handshake bytes of the current record not yet cut into messages.
  private frag: Uint8Array = EMPTY;
  private fragPos = 0;
  private fragVersion = 0;
  // A handshake message spanning records, assembled here.
  private acc: Uint8Array = EMPTY;
  private accLen = 0;
  private accVersion = 0;
  private encrypted = false;
  private error: ParseResult<never> | null = null;
  private consumedBytes = 0;

  constructor(options: TlsRecordReaderOptions = {}) {
    this.maxMessageLength = options.maxMessageLength ?? 65536;
    this.maxBuffered = options.maxBuffered ?? 262144;
  }

  /** Stream bytes taken out of the buffer as whole records so far. */
  get consumed(): number {
    return this.consumedBytes;
  }

  /** Unread bytes held (partial records). */
  get buffered(): number {
    return this.end - this.start;
  }

  /** True once a ChangeCipherSpec record has been read. */
  get changedCipherSpec(): boolean {
    return this.encrypted;
  }

  /** Appends stream bytes. Keeps a view of `chunk` when it can, so do not reuse it until read. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0 || this.error) return;
    const live = this.end - this.start;
    if (live === 0) {
      this.buf = chunk;
      this.start = 0;
      this.end = chunk.length;
      this.owned = false;
    } else if (this.owned && this.buf.length - this.end >= chunk.length) {
      this.buf.set(chunk, this.end);
      this.end += chunk.length;
    } else {
      const next = new Uint8Array(
        Math.max(live + chunk.length, Math.min(live * 2, this.maxBuffered + 1), 512),
      );
      next.set(this.buf.subarray(this.start, this.end));
      next.set(chunk, live);
      this.buf = next;
      this.start = 0;
      this.end = live + chunk.length;
      this.owned = true;
    }
    if (this.end - this.start > this.maxBuffered) {
      this.error = fail('buffer-overflow', 'too many unread bytes', chunk, 0);
    }
  }

  /** The next handshake message or non-handshake record, need-more, or the (sticky) error. */
  read(): ParseResult<TlsStreamItem> {
    if (this.error) return this.error;
    const r = this.readInner();
    if (r.status === 'error') this.error = r;
    return r;
  }

  private readInner(): ParseResult<TlsStreamItem> {
    for (;;) {
      // 1. A message assembled across records.
      if (this.accLen >= 4) {
        const len = u24(this.acc, 1);
        if (len > this.maxMessageLength) {
          return fail('message-too-large', `handshake message of ${len} bytes`, this.acc, 1);
        }
        if (this.accLen >= 4 + len) return done(this.popAccumulated(len), 0);
      }
      // 2. Handshake bytes left in the current record.
      if (this.fragPos < this.frag.length) {
        const f = this.frag;
        const p = this.fragPos;
        if (this.accLen === 0 && f.length - p >= 4) {
          const len = u24(f, p + 1);
          if (len > this.maxMessageLength)
            return fail('message-too-large', `handshake message of ${len} bytes`, f, p + 1);
          if (f.length - p >= 4 + len) {
            this.fragPos = p + 4 + len;
            const item: TlsStreamItem = {
              kind: 'handshake',
              msgType: f[p],
              body: f.subarray(p + 4, p + 4 + len),
              recordVersion: this.fragVersion,
            };
            return done(item, 4 + len);
          }
        }
        if (this.accLen === 0) this.accVersion = this.fragVersion;
        this.append(f.subarray(p));
        this.fragPos = f.length;
        continue;
      }
      // 3. The next record.
      const avail = this.end - this.start;
      if (avail < TLS_RECORD_HEADER) return needMore(TLS_RECORD_HEADER - avail);
      const b = this.buf;
      const h = this.start;
      const type = b[h];
      const version = u16(b, h + 1);
      const length = u16(b, h + 3);
      if (type < CONTENT_CHANGE_CIPHER_SPEC || type > CONTENT_HEARTBEAT) {
        return fail('bad-content-type', `record content type ${type}`, b, h);
      }
      if (b[h + 1] !== 3 || b[h + 2] > 4)
        return fail('bad-record-version', 'record version is not 3.x', b, h + 1);
      if (length > TLS_MAX_RECORD_LENGTH)
        return fail('record-too-large', `record of ${length} bytes`, b, h + 3);
      if (avail < TLS_RECORD_HEADER + length) return needMore(TLS_RECORD_HEADER + length - avail);
      const fragment = b.subarray(h + TLS_RECORD_HEADER, h + TLS_RECORD_HEADER + length);
      this.start = h + TLS_RECORD_HEADER + length;
      this.consumedBytes += TLS_RECORD_HEADER + length;
      if (this.start === this.end) this.release();
      if (type === CONTENT_HANDSHAKE && (!this.encrypted || isWholeHello(fragment))) {
        this.frag = fragment;
        this.fragPos = 0;
        this.fragVersion = version;
        continue;
      }
      // RFC 8446 5.1: handshake messages must not be interleaved with other record types.
      if (this.accLen > 0)
        return fail('interleaved-record', 'record inside a fragmented handshake message', b, h);
      if (type === CONTENT_CHANGE_CIPHER_SPEC) this.encrypted = true;
      return done({ kind: 'record', contentType: type, version, fragment }, TLS_RECORD_HEADER + length);
    }
  }

  private release(): void {
    // Drop our reference to a fully read buffer; views handed out stay valid.
    this.buf = EMPTY;
    this.start = 0;
    this.end = 0;
    this.owned = false;
  }

  private append(bytes: Uint8Array): void {
    const need = this.accLen + bytes.length;
    if (need > this.acc.length) {
      // Size for the whole message once its length is known; messages are capped above.
      let cap = Math.max(need, this.acc.length * 2, 64);
      if (this.accLen >= 4 || need >= 4) {
        const hdr = this.accLen >= 4 ? this.acc : concatHeader(this.acc, this.accLen, bytes);
        cap = Math.max(need, 4 + Math.min(u24(hdr, 1), this.maxMessageLength));
      }
      const next = new Uint8Array(cap);
      next.set(this.acc.subarray(0, this.accLen));
      this.acc = next;
    }
    this.acc.set(bytes, this.accLen);
    this.accLen = need;
  }

  private popAccumulated(len: number): TlsStreamItem {
    const acc = this.acc;
    const total = 4 + len;
    const item: TlsStreamItem = {
      kind: 'handshake',
      msgType: acc[0],
      body: acc.subarray(4, total),
      recordVersion: this.accVersion,
    };
    // The returned view keeps `acc`; later bytes move to a fresh buffer so it is never overwritten.
    const rest = this.accLen - total;
    this.acc = rest > 0 ? acc.slice(total, this.accLen) : EMPTY;
    this.accLen = rest;
    return item;
  }
}

/** The first 4 bytes of acc[0, accLen) followed by `more`. */
function concatHeader(acc: Uint8Array, accLen: number, more: Uint8Array): Uint8Array {
  const h = new Uint8Array(4);
  h.set(acc.subarray(0, Math.min(accLen, 4)));
  if (accLen < 4) h.set(more.subarray(0, 4 - accLen), accLen);
  return h;
}

/**
 * A record that holds exactly one ClientHello or ServerHello. After a ChangeCipherSpec this
 * tells TLS 1.3's plaintext hellos from a TLS 1.2 encrypted Finished, whose first bytes are a
 * nonce or IV: a random one passes both checks with odds of about 2^-31.
 */
function isWholeHello(fragment: Uint8Array): boolean {
  return (
    (fragment[0] === 1 || fragment[0] === 2) &&
    fragment.length >= 4 &&
    u24(fragment, 1) + 4 === fragment.length
  );
}
