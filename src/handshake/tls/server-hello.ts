/**
 * ServerHello body parser (RFC 8446 4.1.3, RFC 5246 7.4.1.3), HelloRetryRequest included.
 * DTLS ServerHellos have the same layout.
 */
import { fail, u16 } from '../bytes.js';
import { done, type ParseResult } from '../errors.js';
import { EXT_ALPN, EXT_KEY_SHARE, EXT_SUPPORTED_VERSIONS } from '../extension-types.js';
import { decodeAlpnList } from './client-hello.js';
import { type HelloVariant, TlsExtension } from './extension.js';

/** The random of a HelloRetryRequest: SHA-256("HelloRetryRequest"), RFC 8446 4.1.3. */
export const HELLO_RETRY_REQUEST_RANDOM: Uint8Array = Uint8Array.from(
  Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex'),
);

/** A parsed ServerHello (or HelloRetryRequest). Byte fields are views into the body. */
export interface ServerHello {
  readonly variant: HelloVariant;
  readonly legacyVersion: number;
  readonly random: Uint8Array;
  readonly sessionId: Uint8Array;
  readonly cipherSuite: number;
  readonly compressionMethod: number;
  readonly extensions: readonly TlsExtension[];
  /** True when the random is the HelloRetryRequest value. */
  readonly helloRetryRequest: boolean;
  /** supported_versions selected_version (TLS/DTLS 1.3), or null. */
  readonly selectedVersion: number | null;
  /** The negotiated version: selectedVersion when present, else legacyVersion. */
  readonly version: number;
  /** The ALPN protocol selected (TLS 1.2 carries it here; TLS 1.3 in EncryptedExtensions). */
  readonly alpn: string | null;
  /** key_share group: the server's share, or for a HelloRetryRequest the group it asks for. */
  readonly keyShareGroup: number | null;
}

/**
 * Parses a ServerHello message body (after the handshake header). Error offsets are offsets
 * in `body`.
 */
export function parseServerHello(body: Uint8Array, variant: HelloVariant = 'tls'): ParseResult<ServerHello> {
  const end = body.length;
  if (end < 35)
    return fail('truncated', 'ServerHello shorter than version, random and session id', body, end);
  const legacyVersion = u16(body, 0);
  const random = body.subarray(2, 34);
  let o = 34;
  const sidLen = body[o++];
  if (sidLen > 32) return fail('bad-session-id', 'session id longer than 32 bytes', body, o - 1);
  if (o + sidLen + 3 > end) return fail('truncated', 'ServerHello ends before its cipher suite', body, o - 1);
  const sessionId = body.subarray(o, o + sidLen);
  o += sidLen;
  const cipherSuite = u16(body, o);
  const compressionMethod = body[o + 2];
  o += 3;

  let helloRetryRequest = true;
  for (let i = 0; i < 32; i++) {
    if (random[i] !== HELLO_RETRY_REQUEST_RANDOM[i]) {
      helloRetryRequest = false;
      break;
    }
  }

  const extensions: TlsExtension[] = [];
  let selectedVersion: number | null = null;
  let alpn: string | null = null;
  let keyShareGroup: number | null = null;
  if (o < end) {
    if (o + 2 > end) return fail('truncated', 'no room for the extensions length', body, o);
    const extLen = u16(body, o);
    o += 2;
    if (o + extLen > end) return fail('truncated', 'extensions run past the end', body, o - 2);
    if (o + extLen < end) return fail('trailing-bytes', 'bytes after the extensions', body, o + extLen);
    while (o < end) {
      if (o + 4 > end) return fail('bad-extension', 'extension header runs past the end', body, o);
      const type = u16(body, o);
      const len = u16(body, o + 2);
      const s = o + 4;
      const e = s + len;
      if (e > end) return fail('bad-extension', 'extension data runs past the end', body, o);
      if (extensions.length === 1024) return fail('too-many-extensions', 'too many extensions', body, o);
      extensions.push(new TlsExtension(type, body, s, len));
      if (type === EXT_SUPPORTED_VERSIONS && selectedVersion === null) {
        if (len !== 2) return fail('bad-extension', 'supported_versions is not one version', body, s);
        selectedVersion = u16(body, s);
      } else if (type === EXT_KEY_SHARE && keyShareGroup === null) {
        if (len < 2) return fail('bad-extension', 'key_share without a group', body, s);
        keyShareGroup = u16(body, s);
      } else if (type === EXT_ALPN && alpn === null) {
        const protocols: string[] = [];
        if (decodeAlpnList(protocols, body, s, e) >= 0 || protocols.length !== 1) {
          return fail('bad-extension', 'ALPN does not select exactly one protocol', body, s);
        }
        alpn = protocols[0];
      }
      o = e;
    }
  }
  return done(
    {
      variant,
      legacyVersion,
      random,
      sessionId,
      cipherSuite,
      compressionMethod,
      extensions,
      helloRetryRequest,
      selectedVersion,
      version: selectedVersion ?? legacyVersion,
      alpn,
      keyShareGroup,
    },
    end,
  );
}
