import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { type Connection, now } from '../../connection/index.js';
import { ianaCipherName } from '../../handshake/ciphers.js';
import { tlsVersionFromName } from '../../handshake/versions.js';

/**
 * Fills the handshake fields of a model from a TLS socket whose handshake just completed:
 * the engine's answers, never the configuration that was asked for.
 */
export function fillFromHandshake(conn: Connection, socket: TLSSocket): void {
  conn.tlsVersion = tlsVersionFromName(socket.getProtocol());
  const cipher = socket.getCipher();
  // Node's standardName is the IANA name; the table also maps OpenSSL names if it ever is not
  conn.cipher = ianaCipherName(cipher.standardName) ?? ianaCipherName(cipher.name) ?? cipher.standardName;
  conn.alpn = typeof socket.alpnProtocol === 'string' ? socket.alpnProtocol : '';
  conn.certificateList = peerCertificateChain(socket);
  conn.timestampTlsSetup = now();
}

/** The peer's certificates, leaf first (empty when it sent none). */
export function peerCertificateChain(socket: TLSSocket): X509Certificate[] {
  // an empty object when the peer sent no certificate
  const leaf: Partial<DetailedPeerCertificate> = socket.getPeerCertificate(true);
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  let cert: Partial<DetailedPeerCertificate> | undefined = leaf;
  while (cert?.raw && cert.fingerprint256 && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    chain.push(new X509Certificate(cert.raw));
    // a self-signed root is its own issuer
    cert = cert.issuerCertificate;
  }
  return chain;
}
