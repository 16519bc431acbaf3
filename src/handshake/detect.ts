/**
 * Cheap protocol detection on the first bytes of a stream or the first datagram of a flow,
 * as a listener's "next layer" choice. No allocation: hot path.
 */
import { isQuicGreaseVersion, QUIC_V1, QUIC_V2, QUIC_VERSION_NEGOTIATION } from './versions.js';

/** What the first bytes of a stream are (or that more are needed to tell). */
export type StreamDetection = 'tls' | 'other' | 'need-more';
/** What the first datagram of a flow is. */
export type DatagramDetection = 'dtls' | 'quic' | 'raw';

/**
 * 'tls' when the stream starts like a TLS ClientHello record (any version from SSLv3:
 * content type 22, version 3.0-3.4, a plausible length, handshake type 1), 'other' as soon as
 * a byte rules it out, 'need-more' while the prefix still could be one (up to 6 bytes).
 */
export function detectStream(first: Uint8Array): StreamDetection {
  const n = first.length;
  if (n < 1) return 'need-more';
  if (first[0] !== 0x16) return 'other';
  if (n < 2) return 'need-more';
  if (first[1] !== 0x03) return 'other';
  if (n < 3) return 'need-more';
  if (first[2] > 0x04) return 'other';
  if (n < 5) return 'need-more';
  const length = (first[3] << 8) | first[4];
  if (length === 0 || length > 16384 + 2048) return 'other';
  if (n < 6) return 'need-more';
  return first[5] === 0x01 ? 'tls' : 'other';
}

/**
 * Classifies a datagram, in mitmproxy's order: a DTLS ClientHello record (content type 22,
 * version 0xfeff/0xfefd/0xfefc/0x0100, epoch 0, handshake type 1), then a QUIC long header
 * packet (fixed bit, version 1, 2, GREASE or 0, connection IDs of at most 20 bytes), else raw.
 */
export function detectDatagram(d: Uint8Array): DatagramDetection {
  const n = d.length;
  if (n === 0) return 'raw';
  const b0 = d[0];
  if (b0 === 0x16) return isDtlsClientHello(d) ? 'dtls' : 'raw';
  if ((b0 & 0xc0) === 0xc0 && n >= 7) {
    const version = ((d[1] << 24) | (d[2] << 16) | (d[3] << 8) | d[4]) >>> 0;
    if (
      version !== QUIC_V1 &&
      version !== QUIC_V2 &&
      version !== QUIC_VERSION_NEGOTIATION &&
      !isQuicGreaseVersion(version)
    ) {
      return 'raw';
    }
    const dcidLen = d[5];
    if (dcidLen > 20 || n < 7 + dcidLen) return 'raw';
    const scidLen = d[6 + dcidLen];
    if (scidLen > 20 || n < 7 + dcidLen + scidLen) return 'raw';
    return 'quic';
  }
  return 'raw';
}

function isDtlsClientHello(d: Uint8Array): boolean {
  // 13-byte record header, then the 12-byte handshake header.
  if (d.length < 25) return false;
  const version = (d[1] << 8) | d[2];
  if (version !== 0xfeff && version !== 0xfefd && version !== 0xfefc && version !== 0x0100) return false;
  if (d[3] !== 0 || d[4] !== 0) return false; // epoch 0
  const length = (d[11] << 8) | d[12];
  if (length < 12 || length > d.length - 13) return false;
  return d[13] === 0x01;
}
