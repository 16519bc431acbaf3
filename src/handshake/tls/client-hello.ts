/**
 * ClientHello body parser (RFC 8446 4.1.2, RFC 5246 7.4.1.2, RFC 6347 4.2.1 for DTLS).
 * Pure and bounds-checked: it returns need-more, done or a typed error, and never throws.
 */
import { fail, latin1, u16, utf8 } from '../bytes.js';
import { done, type ParseResult } from '../errors.js';
import {
  EXT_ALPN,
  EXT_EC_POINT_FORMATS,
  EXT_KEY_SHARE,
  EXT_PSK_KEY_EXCHANGE_MODES,
  EXT_QUIC_TRANSPORT_PARAMETERS,
  EXT_SERVER_NAME,
  EXT_SIGNATURE_ALGORITHMS,
  EXT_SUPPORTED_GROUPS,
  EXT_SUPPORTED_VERSIONS,
} from '../extension-types.js';
import { compareWireVersions, isGrease } from '../versions.js';
import { type HelloVariant, TlsExtension } from './extension.js';

export { type HelloVariant, TlsExtension } from './extension.js';

/**
 * A parsed ClientHello. Byte fields are views into the parsed body (not copies): copy them
 * if the input buffer is going to be reused. Decoded fields come from the first occurrence
 * of their extension; `extensions` keeps every extension in wire order, GREASE included.
 */
export interface ClientHello {
  readonly variant: HelloVariant;
  /** legacy_version (client_version): 0x0303 for TLS 1.2 and 1.3, 0xfefd for DTLS 1.2 and 1.3. */
  readonly legacyVersion: number;
  readonly random: Uint8Array;
  readonly sessionId: Uint8Array;
  /** DTLS only (null for TLS): the HelloVerifyRequest cookie being echoed, often empty. */
  readonly cookie: Uint8Array | null;
  /** Offered cipher suite codes in wire order, GREASE and SCSVs included. */
  readonly cipherSuites: readonly number[];
  readonly compressionMethods: Uint8Array;
  readonly extensions: readonly TlsExtension[];
  /** First host_name of server_name, or null. */
  readonly sni: string | null;
  /** ALPN protocol names, one char per byte (latin1: lossless; ASCII as is). */
  readonly alpnProtocols: readonly string[];
  /** supported_versions entries in wire order (empty when absent). */
  readonly supportedVersions: readonly number[];
  readonly supportedGroups: readonly number[];
  /** Groups of the key_share entries, in wire order. */
  readonly keyShareGroups: readonly number[];
  readonly signatureAlgorithms: readonly number[];
  readonly ecPointFormats: readonly number[];
  readonly pskKeyExchangeModes: readonly number[];
  /** quic_transport_parameters extension data, raw. */
  readonly quicTransportParameters: Uint8Array | null;
}

/** Upper bound on the extensions of one hello, so hostile input cannot make huge arrays. */
const MAX_EXTENSIONS = 1024;

/**
 * Parses a ClientHello message body (the bytes after the 4-byte TLS or 12-byte DTLS handshake
 * header). The body length is known, so short input is an error, not need-more. Error offsets
 * are offsets in `body`.
 */
export function parseClientHello(body: Uint8Array, variant: HelloVariant = 'tls'): ParseResult<ClientHello> {
  const end = body.length;
  if (end < 35)
    return fail('truncated', 'ClientHello shorter than version, random and session id', body, end);
  const legacyVersion = u16(body, 0);
  const random = body.subarray(2, 34);
  let o = 34;
  const sidLen = body[o++];
  if (sidLen > 32) return fail('bad-session-id', 'session id longer than 32 bytes', body, o - 1);
  if (o + sidLen > end) return fail('truncated', 'session id runs past the end', body, o - 1);
  const sessionId = body.subarray(o, o + sidLen);
  o += sidLen;

  let cookie: Uint8Array | null = null;
  if (variant === 'dtls') {
    if (o >= end) return fail('truncated', 'no room for the cookie length', body, o);
    const cookieLen = body[o++];
    if (o + cookieLen > end) return fail('truncated', 'cookie runs past the end', body, o - 1);
    cookie = body.subarray(o, o + cookieLen);
    o += cookieLen;
  }

  if (o + 2 > end) return fail('truncated', 'no room for the cipher suites length', body, o);
  const csLen = u16(body, o);
  o += 2;
  if (csLen & 1) return fail('bad-cipher-suites', 'odd cipher suites length', body, o - 2);
  if (o + csLen > end) return fail('truncated', 'cipher suites run past the end', body, o - 2);
  const cipherSuites: number[] = new Array(csLen >> 1);
  for (let i = 0; i < csLen; i += 2) cipherSuites[i >> 1] = u16(body, o + i);
  o += csLen;

  if (o >= end) return fail('truncated', 'no room for the compression methods length', body, o);
  const cmLen = body[o++];
  if (o + cmLen > end) return fail('truncated', 'compression methods run past the end', body, o - 1);
  const compressionMethods = body.subarray(o, o + cmLen);
  o += cmLen;

  const hello: Mutable<ClientHello> = {
    variant,
    legacyVersion,
    random,
    sessionId,
    cookie,
    cipherSuites,
    compressionMethods,
    extensions: [],
    sni: null,
    alpnProtocols: [],
    supportedVersions: [],
    supportedGroups: [],
    keyShareGroups: [],
    signatureAlgorithms: [],
    ecPointFormats: [],
    pskKeyExchangeModes: [],
    quicTransportParameters: null,
  };
  // SSLv3 and some TLS 1.0 hellos end here: no extensions block at all.
  if (o === end) return done(hello, end);

  if (o + 2 > end) return fail('truncated', 'no room for the extensions length', body, o);
  const extLen = u16(body, o);
  o += 2;
  if (o + extLen > end) return fail('truncated', 'extensions run past the end', body, o - 2);
  if (o + extLen < end) return fail('trailing-bytes', 'bytes after the extensions', body, o + extLen);

  const extensions: TlsExtension[] = [];
  let seen = 0; // bit per decoded extension, so only the first occurrence is decoded
  while (o < end) {
    if (o + 4 > end) return fail('bad-extension', 'extension header runs past the end', body, o);
    const type = u16(body, o);
    const len = u16(body, o + 2);
    const start = o + 4;
    if (start + len > end) return fail('bad-extension', 'extension data runs past the end', body, o);
    if (extensions.length === MAX_EXTENSIONS)
      return fail('too-many-extensions', 'too many extensions', body, o);
    extensions.push(new TlsExtension(type, body, start, len));
    const bit = decodedBit(type);
    if (bit !== 0 && (seen & bit) === 0) {
      seen |= bit;
      const bad = decodeExtension(hello, type, body, start, start + len);
      if (bad >= 0) return fail('bad-extension', `malformed extension ${type}`, body, bad);
    }
    o = start + len;
  }
  hello.extensions = extensions;
  return done(hello, end);
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function decodedBit(type: number): number {
  switch (type) {
    case EXT_SERVER_NAME:
      return 1;
    case EXT_ALPN:
      return 2;
    case EXT_SUPPORTED_VERSIONS:
      return 4;
    case EXT_SUPPORTED_GROUPS:
      return 8;
    case EXT_KEY_SHARE:
      return 16;
    case EXT_SIGNATURE_ALGORITHMS:
      return 32;
    case EXT_EC_POINT_FORMATS:
      return 64;
    case EXT_PSK_KEY_EXCHANGE_MODES:
      return 128;
    case EXT_QUIC_TRANSPORT_PARAMETERS:
      return 256;
    default:
      return 0;
  }
}

/** Decodes one known extension into `hello`; returns -1, or the offset where it is malformed. */
function decodeExtension(
  hello: Mutable<ClientHello>,
  type: number,
  b: Uint8Array,
  s: number,
  e: number,
): number {
  switch (type) {
    case EXT_SERVER_NAME:
      return decodeServerName(hello, b, s, e);
    case EXT_ALPN: {
      const protocols: string[] = [];
      const bad = decodeAlpnList(protocols, b, s, e);
      hello.alpnProtocols = protocols;
      return bad;
    }
    case EXT_SUPPORTED_VERSIONS: {
      if (s >= e || b[s] + 1 !== e - s) return s;
      const out: number[] = [];
      hello.supportedVersions = out;
      return decodeU16List(out, b, s + 1, e);
    }
    case EXT_SUPPORTED_GROUPS: {
      const out: number[] = [];
      hello.supportedGroups = out;
      return decodeU16Vector(out, b, s, e);
    }
    case EXT_SIGNATURE_ALGORITHMS: {
      const out: number[] = [];
      hello.signatureAlgorithms = out;
      return decodeU16Vector(out, b, s, e);
    }
    case EXT_KEY_SHARE: {
      const out: number[] = [];
      hello.keyShareGroups = out;
      return decodeKeyShares(out, b, s, e);
    }
    case EXT_EC_POINT_FORMATS: {
      const out: number[] = [];
      hello.ecPointFormats = out;
      return decodeU8Vector(out, b, s, e);
    }
    case EXT_PSK_KEY_EXCHANGE_MODES: {
      const out: number[] = [];
      hello.pskKeyExchangeModes = out;
      return decodeU8Vector(out, b, s, e);
    }
    case EXT_QUIC_TRANSPORT_PARAMETERS:
      hello.quicTransportParameters = b.subarray(s, e);
      return -1;
    default:
      return -1;
  }
}

function decodeServerName(hello: Mutable<ClientHello>, b: Uint8Array, s: number, e: number): number {
  if (s === e) return -1; // empty extension: tolerated, no name
  if (s + 2 > e || u16(b, s) !== e - s - 2) return s;
  let o = s + 2;
  while (o < e) {
    if (o + 3 > e) return o;
    const nameType = b[o];
    const len = u16(b, o + 1);
    if (o + 3 + len > e) return o;
    if (nameType === 0 && hello.sni === null) hello.sni = utf8(b, o + 3, o + 3 + len);
    o += 3 + len;
  }
  return -1;
}

/** Decodes a ProtocolNameList (RFC 7301) into `out`; returns -1 or the bad offset. */
export function decodeAlpnList(out: string[], b: Uint8Array, s: number, e: number): number {
  if (s + 2 > e || u16(b, s) !== e - s - 2) return s;
  let o = s + 2;
  while (o < e) {
    const len = b[o];
    if (o + 1 + len > e) return o;
    out.push(latin1(b, o + 1, o + 1 + len));
    o += 1 + len;
  }
  return -1;
}

/** A vector of u16 with a 2-byte length prefix covering the whole extension. */
function decodeU16Vector(out: number[], b: Uint8Array, s: number, e: number): number {
  if (s + 2 > e || u16(b, s) !== e - s - 2) return s;
  return decodeU16List(out, b, s + 2, e);
}

function decodeU16List(out: number[], b: Uint8Array, s: number, e: number): number {
  if ((e - s) & 1) return s;
  for (let o = s; o < e; o += 2) out.push(u16(b, o));
  return -1;
}

/** A vector of u8 with a 1-byte length prefix covering the whole extension. */
function decodeU8Vector(out: number[], b: Uint8Array, s: number, e: number): number {
  if (s >= e || b[s] !== e - s - 1) return s;
  for (let o = s + 1; o < e; o++) out.push(b[o]);
  return -1;
}

function decodeKeyShares(out: number[], b: Uint8Array, s: number, e: number): number {
  if (s + 2 > e || u16(b, s) !== e - s - 2) return s;
  let o = s + 2;
  while (o < e) {
    if (o + 4 > e) return o;
    const len = u16(b, o + 2);
    if (o + 4 + len > e) return o;
    out.push(u16(b, o));
    o += 4 + len;
  }
  return -1;
}

/**
 * The newest protocol version the hello offers: the newest non-GREASE supported_versions
 * entry, else legacy_version. DTLS counts down (0xfefc is newer than 0xfefd).
 */
export function highestOfferedVersion(hello: ClientHello): number {
  let best = -1;
  for (const v of hello.supportedVersions) {
    if (isGrease(v)) continue;
    if (best === -1 || compareWireVersions(v, best) > 0) best = v;
  }
  return best === -1 ? hello.legacyVersion : best;
}
