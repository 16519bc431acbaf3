/**
 * JA4 client fingerprint (FoxIO, technical_details/JA4.md):
 *   a: protocol (t/q/d), version, SNI (d/i), cipher count, extension count, ALPN first+last char
 *   b: first 12 hex of SHA-256 of the sorted cipher list
 *   c: first 12 hex of SHA-256 of the sorted extension list (without SNI and ALPN), '_' and the
 *      signature algorithms in wire order
 * GREASE is ignored everywhere.
 */
import { createHash } from 'node:crypto';
import { EXT_ALPN, EXT_SERVER_NAME } from './extension-types.js';
import { type ClientHello, highestOfferedVersion } from './tls/client-hello.js';
import { isGrease } from './versions.js';

/** 't' TLS over TCP, 'q' QUIC, 'd' DTLS. */
export type Ja4Transport = 'tcp' | 'quic' | 'dtls';

/** A JA4 fingerprint (FoxIO): the hashed form and the raw parts it was made from. */
export interface Ja4 {
  /** The fingerprint, e.g. t13d1516h2_8daaf6152771_e5627efa2ab1. */
  readonly ja4: string;
  /** Raw form with sorted lists (JA4_r). */
  readonly raw: string;
  /** Hashed form with lists in wire order (JA4_o). */
  readonly original: string;
  /** Raw form with lists in wire order (JA4_ro). */
  readonly rawOriginal: string;
}

const ZERO_HASH = '000000000000';

/**
 * The JA4 of a ClientHello. `transport` defaults from the hello: 'dtls' for a DTLS hello, else
 * 'tcp' (pass 'quic' for a hello taken out of QUIC Initials).
 *
 * Version: the newest non-GREASE supported_versions entry, else legacy_version. For DTLS that
 * is the numerically lowest code (0xfefc, DTLS 1.3, is newer than 0xfefd); the spec says
 * "highest value", which read literally would fingerprint every DTLS 1.2 client as DTLS 1.0.
 */
export function ja4(
  hello: ClientHello,
  transport: Ja4Transport = hello.variant === 'dtls' ? 'dtls' : 'tcp',
): Ja4 {
  const ciphers = hello.cipherSuites.filter((c) => !isGrease(c));
  const extensions: number[] = [];
  let hasSni = false;
  for (const e of hello.extensions) {
    if (isGrease(e.type)) continue;
    extensions.push(e.type);
    if (e.type === EXT_SERVER_NAME) hasSni = true;
  }
  const sigalgs = hello.signatureAlgorithms.filter((s) => !isGrease(s));

  const a =
    (transport === 'quic' ? 'q' : transport === 'dtls' ? 'd' : 't') +
    versionCode(highestOfferedVersion(hello)) +
    (hasSni ? 'd' : 'i') +
    twoDigits(ciphers.length) +
    twoDigits(extensions.length) +
    alpnCode(hello.alpnProtocols[0]);

  const sortedCiphers = hexList([...ciphers].sort((x, y) => x - y));
  const originalCiphers = hexList(ciphers);
  const forHash = extensions.filter((t) => t !== EXT_SERVER_NAME && t !== EXT_ALPN);
  const sigs = hexList(sigalgs);
  const sortedExts = withSigs(hexList([...forHash].sort((x, y) => x - y)), sigs);
  const originalExts = withSigs(hexList(extensions), sigs);

  return {
    ja4: `${a}_${ciphers.length ? hash12(sortedCiphers) : ZERO_HASH}_${forHash.length ? hash12(sortedExts) : ZERO_HASH}`,
    raw: `${a}_${sortedCiphers}_${sortedExts}`,
    original: `${a}_${ciphers.length ? hash12(originalCiphers) : ZERO_HASH}_${extensions.length ? hash12(originalExts) : ZERO_HASH}`,
    rawOriginal: `${a}_${originalCiphers}_${originalExts}`,
  };
}

function versionCode(v: number): string {
  switch (v) {
    case 0x0304:
      return '13';
    case 0x0303:
      return '12';
    case 0x0302:
      return '11';
    case 0x0301:
      return '10';
    case 0x0300:
      return 's3';
    case 0x0002:
      return 's2';
    case 0xfeff:
      return 'd1';
    case 0xfefd:
      return 'd2';
    case 0xfefc:
      return 'd3';
    default:
      return '00';
  }
}

function twoDigits(n: number): string {
  return n > 99 ? '99' : n < 10 ? `0${n}` : String(n);
}

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

const HEX = '0123456789abcdef';

/** First and last char of the first ALPN value; hex nibbles when either is not alphanumeric. */
function alpnCode(first: string | undefined): string {
  if (first === undefined || first.length === 0) return '00';
  const f = first.charCodeAt(0);
  const l = first.charCodeAt(first.length - 1);
  // FoxIO's implementation treats a 2-byte GREASE ALPN value as no ALPN.
  if (first.length === 2 && isGrease((f << 8) | l)) return '00';
  if (isAlnum(f) && isAlnum(l)) return first[0] + first[first.length - 1];
  return HEX[(f >> 4) & 15] + HEX[l & 15];
}

function hexList(values: readonly number[]): string {
  let s = '';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) s += ',';
    s += values[i].toString(16).padStart(4, '0');
  }
  return s;
}

function withSigs(exts: string, sigs: string): string {
  return sigs === '' ? exts : `${exts}_${sigs}`;
}

function hash12(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 12);
}
