/**
 * Protocol version codes as they appear on the wire, and their `TlsVersion` names.
 */
import type { TlsVersion } from '../connection/types.js';

export const SSL3_VERSION = 0x0300;
export const TLS1_VERSION = 0x0301;
export const TLS1_1_VERSION = 0x0302;
export const TLS1_2_VERSION = 0x0303;
/** Only ever seen in supported_versions: the legacy fields of a TLS 1.3 hello say 0x0303. */
export const TLS1_3_VERSION = 0x0304;
/** OpenSSL's pre-standard DTLS ("DTLS1_BAD_VER"). */
export const DTLS0_9_VERSION = 0x0100;
export const DTLS1_VERSION = 0xfeff;
export const DTLS1_2_VERSION = 0xfefd;
/** Only ever seen in supported_versions, like TLS 1.3. */
export const DTLS1_3_VERSION = 0xfefc;
export const QUIC_V1 = 0x00000001;
/** RFC 9369. */
export const QUIC_V2 = 0x6b3343cf;
/** A long header with this version is a Version Negotiation packet. */
export const QUIC_VERSION_NEGOTIATION = 0x00000000;

/**
 * The TlsVersion of a TLS or DTLS wire code (record version, legacy_version, a
 * supported_versions entry), or null for anything else (GREASE included).
 */
export function tlsVersionFromWire(code: number): TlsVersion | null {
  switch (code) {
    case SSL3_VERSION:
      return 'SSLv3';
    case TLS1_VERSION:
      return 'TLSv1';
    case TLS1_1_VERSION:
      return 'TLSv1.1';
    case TLS1_2_VERSION:
      return 'TLSv1.2';
    case TLS1_3_VERSION:
      return 'TLSv1.3';
    case DTLS0_9_VERSION:
      return 'DTLSv0.9';
    case DTLS1_VERSION:
      return 'DTLSv1';
    case DTLS1_2_VERSION:
      return 'DTLSv1.2';
    case DTLS1_3_VERSION:
      return 'DTLSv1.3';
    default:
      return null;
  }
}

/** The TlsVersion of a QUIC version number (`QUICv1`, `QUICv2`), or null. */
export function quicVersionFromWire(version: number): TlsVersion | null {
  if (version === QUIC_V1) return 'QUICv1';
  if (version === QUIC_V2) return 'QUICv2';
  return null;
}

const WIRE_CODES: Readonly<Record<TlsVersion, number>> = {
  SSLv3: SSL3_VERSION,
  TLSv1: TLS1_VERSION,
  'TLSv1.1': TLS1_1_VERSION,
  'TLSv1.2': TLS1_2_VERSION,
  'TLSv1.3': TLS1_3_VERSION,
  'DTLSv0.9': DTLS0_9_VERSION,
  DTLSv1: DTLS1_VERSION,
  'DTLSv1.2': DTLS1_2_VERSION,
  'DTLSv1.3': DTLS1_3_VERSION,
  QUICv1: QUIC_V1,
  QUICv2: QUIC_V2,
};

/** The wire code of a TlsVersion (the QUIC version number for QUICv1/QUICv2). */
export function tlsVersionToWire(version: TlsVersion): number {
  return WIRE_CODES[version];
}

/**
 * The TlsVersion named by Node's `TLSSocket.getProtocol()` (and OpenSSL's `SSL_get_version()`:
 * 'TLSv1.2', 'DTLSv1.2', 'DTLSv0.9', ...). 'unknown', null and anything else give null.
 */
export function tlsVersionFromName(name: string | null | undefined): TlsVersion | null {
  if (name == null) return null;
  return Object.hasOwn(WIRE_CODES, name) ? (name as TlsVersion) : null;
}

/** True for a DTLS wire code (0x0100 and 0xfe..). */
export function isDtlsVersion(code: number): boolean {
  return code === DTLS0_9_VERSION || (code >= 0xfe00 && code <= 0xfeff);
}

/**
 * Orders two wire codes of the same family by protocol age: positive when `a` is newer.
 * DTLS counts down (0xfefc is newer than 0xfeff); DTLSv0.9 (0x0100) is older than all.
 */
export function compareWireVersions(a: number, b: number): number {
  return versionRank(a) - versionRank(b);
}

function versionRank(code: number): number {
  if (code === DTLS0_9_VERSION) return -1;
  if (code >= 0xfe00 && code <= 0xfeff) return 0xffff - code;
  return code;
}

/** RFC 8701 GREASE value for 16-bit code points: 0x0a0a, 0x1a1a, ..., 0xfafa. */
export function isGrease(value: number): boolean {
  return (value & 0x0f0f) === 0x0a0a && value >> 8 === (value & 0xff);
}

/** RFC 9000 section 15 reserved (GREASE) QUIC versions: 0x?a?a?a?a. */
export function isQuicGreaseVersion(version: number): boolean {
  return (version & 0x0f0f0f0f) === 0x0a0a0a0a;
}
