/**
 * Peer certificates as the models hold them, parsed once per DER: a server presents the same
 * chain to every client, and parsing one (`new X509Certificate`) was 8% of a QUIC handshake.
 * An X509Certificate is immutable, so models share it. Bounded (least recently used goes).
 */
import { X509Certificate } from 'node:crypto';
import { LruMap } from '../collections/lru-map.js';

const parsed = new LruMap<string, X509Certificate>(256);

/** The certificate of `der`, parsed or from the cache; throws as `new X509Certificate` does. */
export function certificateFromDer(der: Uint8Array): X509Certificate {
  const key = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1');
  return parsed.getOrSet(key, () => new X509Certificate(der));
}
