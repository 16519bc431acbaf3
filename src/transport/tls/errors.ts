/**
 * mitmproxy's normalised TLS errors, with the engine's own words kept after them:
 * "Certificate verify failed: self-signed certificate",
 * "The remote server does not speak TLS. (ERR_SSL_WRONG_VERSION_NUMBER: wrong version number)".
 */

type EngineError = Error & { code?: string; reason?: string };

/** X509_V_ERR_* names that Node gives a failed verification as `code`. */
const VERIFY_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'OUT_OF_MEM',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

/** OpenSSL failures that mean the bytes that came back were not TLS at all. */
const NOT_TLS_CODES: ReadonlySet<string> = new Set([
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_RECORD_LAYER_FAILURE',
  'ERR_SSL_HTTP_REQUEST',
  'ERR_SSL_HTTPS_PROXY_REQUEST',
  // what a plain echo server produces: our own ClientHello comes back
  'ERR_SSL_UNEXPECTED_MESSAGE',
]);

const VERSION_CODES: ReadonlySet<string> = new Set([
  'ERR_SSL_UNSUPPORTED_PROTOCOL',
  'ERR_SSL_NO_PROTOCOLS_AVAILABLE',
  'ERR_SSL_WRONG_SSL_VERSION',
]);

/**
 * The alert an engine code reports receiving (`HANDSHAKE_FAILURE`, `UNKNOWN_CA`), or null. OpenSSL
 * 3.0 (Node 20) names alerts `ERR_SSL_SSLV3_ALERT_*` and `ERR_SSL_TLSV1_ALERT_*`; OpenSSL 3.5
 * (Node 24, 26) renamed the first to `ERR_SSL_SSL/TLS_ALERT_*`, so codes are matched by alert.
 */
export function receivedAlert(code: string | null | undefined): string | null {
  const m = code ? /^ERR_SSL_(?:SSLV3|SSL\/TLS|TLSV1|TLSV13)_ALERT_(.+)$/.exec(code) : null;
  return m ? (m[1] as string) : null;
}

/** Alerts of a peer that rejected our certificate. */
const DISTRUST_ALERTS: ReadonlySet<string> = new Set([
  'UNKNOWN_CA',
  'BAD_CERTIFICATE',
  'CERTIFICATE_UNKNOWN',
]);

/** The engine code says the peer rejected our certificate. */
export function isDistrust(code: string | null | undefined): boolean {
  return DISTRUST_ALERTS.has(receivedAlert(code) ?? '');
}

/** No TLS version both ends accept: the peer's alert, or our own engine's refusal. */
function isVersionFailure(code: string): boolean {
  return VERSION_CODES.has(code) || receivedAlert(code) === 'PROTOCOL_VERSION';
}

/** The engine's own words: OpenSSL's reason and code, or Node's message. */
function engineText(err: EngineError): string {
  if (err.reason && err.code) return `${err.code}: ${err.reason}`;
  return err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message;
}

/**
 * OpenSSL's verify reason without the advice Node 24 appends ("; if the root CA is installed
 * locally, try running Node.js with --use-system-ca"), so the model reads the same on every Node.
 */
function verifyReason(message: string): string {
  const advice = message.indexOf('; if the root CA is installed locally');
  return advice === -1 ? message : message.slice(0, advice);
}

/** A handshake failure of our client (dialing a server), as recorded in `Server.error`. */
export function describeServerTlsError(err: EngineError): string {
  const code = err.code ?? '';
  if (VERIFY_CODES.has(code)) return `Certificate verify failed: ${verifyReason(err.message)}`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `Certificate verify failed: hostname mismatch (${err.message})`;
  if (NOT_TLS_CODES.has(code)) return `The remote server does not speak TLS. (${engineText(err)})`;
  if (isVersionFailure(code))
    return `The remote server and wirelayer cannot agree on a TLS version to use. (${engineText(err)})`;
  if (code === 'ECONNRESET' || code === 'EPIPE')
    return `The remote server closed the connection during the TLS handshake. (${engineText(err)})`;
  return `TLS handshake failed: ${engineText(err)}`;
}

/** A handshake failure with a client that reached our listener, as recorded in `Client.error`. */
export function describeClientTlsError(err: EngineError, sni: string | null): string {
  const code = err.code ?? '';
  const dest = sni ?? 'the listener';
  if (isDistrust(code)) return `The client does not trust the certificate for ${dest} (${engineText(err)})`;
  if (isVersionFailure(code))
    return `The client and wirelayer cannot agree on a TLS version to use. (${engineText(err)})`;
  if (code === 'ECONNRESET' || code === 'EPIPE')
    return `The client disconnected during the handshake. If this happens consistently for ${dest}, the client may not trust the certificate. (${engineText(err)})`;
  return `TLS handshake failed: ${engineText(err)}`;
}

/** Bytes that are not a ClientHello: mitmproxy's message, the bytes as hex (at most 256), the parser's reason. */
export function describeBadClientHello(bytes: Uint8Array, reason: string): string {
  const shown = Buffer.from(bytes.subarray(0, 256)).toString('hex');
  return `Cannot parse ClientHello: ${shown}${bytes.length > 256 ? '...' : ''} (${reason})`;
}
