import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
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

/**
 * The peer's certificates, leaf first (empty when it sent none): the leaf and its issuers as the
 * engine linked them from the chain the peer sent. (Walking `getPeerCertificate(true)` instead
 * costs ~0.8 ms per handshake: it decodes every field of every certificate into objects.)
 */
export function peerCertificateChain(socket: TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  let cert = socket.getPeerX509Certificate();
  while (cert && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    chain.push(cert);
    // a self-signed root is its own issuer
    cert = cert.issuerCertificate;
  }
  return chain;
}
