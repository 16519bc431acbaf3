/**
 * mitmproxy's normalised TLS errors for DTLS, with the engine's own words kept after them:
 * "Certificate verify failed: unable to get local issuer certificate (certificate verify failed
 * ... (sent alert: unknown CA))", "The remote server does not speak DTLS. (unexpected message)".
 */
import type { DtlsError } from './engine.js';

/** What a failure says, in the engine's words: its message and OpenSSL's reasons. */
const text = (err: DtlsError): string => `${err.message} ${err.reasons.join(' ')}`.toLowerCase();

/** The bytes that came back were not DTLS (an echo service returns our own ClientHello). */
const NOT_DTLS =
  /unexpected message|wrong version number|record layer failure|packet length too long|bad packet length/;
const VERSION =
  /unsupported protocol|protocol version|no protocols available|wrong ssl version|version too low/;
const DISTRUST = /unknown ca|bad certificate|certificate unknown|alert unknown_ca/;

/** A handshake failure of our client (dialing a server), as recorded in `Server.error`. */
export function describeServerDtlsError(err: DtlsError): string {
  if (err.verifyError !== null) return `Certificate verify failed: ${err.verifyError} (${err.message})`;
  const t = text(err);
  if (err.code === 'ERR_DTLS_TIMEOUT')
    return `The remote server did not complete the DTLS handshake. (${err.message})`;
  if (NOT_DTLS.test(t)) return `The remote server does not speak DTLS. (${err.message})`;
  if (VERSION.test(t))
    return `The remote server and wirelayer cannot agree on a DTLS version to use. (${err.message})`;
  return `DTLS handshake failed: ${err.message}`;
}

/** A handshake failure with a client that reached our listener, as recorded in `Client.error`. */
export function describeClientDtlsError(err: DtlsError, sni: string | null): string {
  const dest = sni ?? 'the listener';
  const t = text(err);
  if (DISTRUST.test(t)) return `The client does not trust the certificate for ${dest} (${err.message})`;
  if (VERSION.test(t))
    return `The client and wirelayer cannot agree on a DTLS version to use. (${err.message})`;
  if (err.code === 'ERR_DTLS_TIMEOUT')
    return `The client stopped answering during the DTLS handshake. If this happens consistently for ${dest}, the client may not trust the certificate. (${err.message})`;
  return `DTLS handshake failed: ${err.message}`;
}

// the same words for TLS and DTLS
export { describeBadClientHello } from '../tls/errors.js';
