/**
 * QUIC error codes (RFC 9000, 20.1; TLS alerts as CRYPTO_ERROR 0x0100 + alert, RFC 9001,
 * 4.8) and the model's `error` text for a connection that ended with one.
 */
import type { ConnectionError } from './binding.js';

const TRANSPORT_ERRORS = [
  'NO_ERROR',
  'INTERNAL_ERROR',
  'CONNECTION_REFUSED',
  'FLOW_CONTROL_ERROR',
  'STREAM_LIMIT_ERROR',
  'STREAM_STATE_ERROR',
  'FINAL_SIZE_ERROR',
  'FRAME_ENCODING_ERROR',
  'TRANSPORT_PARAMETER_ERROR',
  'CONNECTION_ID_LIMIT_ERROR',
  'PROTOCOL_VIOLATION',
  'INVALID_TOKEN',
  'APPLICATION_ERROR',
  'CRYPTO_BUFFER_EXCEEDED',
  'KEY_UPDATE_ERROR',
  'AEAD_LIMIT_REACHED',
  'NO_VIABLE_PATH',
] as const;

/** QUIC transport error codes by name. */
export const QuicErrorCode = {
  NO_ERROR: 0x0,
  INTERNAL_ERROR: 0x1,
  CONNECTION_REFUSED: 0x2,
  PROTOCOL_VIOLATION: 0xa,
  CRYPTO_ERROR: 0x100,
} as const;

const TLS_ALERTS: Readonly<Record<number, string>> = {
  0: 'close_notify',
  10: 'unexpected_message',
  20: 'bad_record_mac',
  22: 'record_overflow',
  40: 'handshake_failure',
  42: 'bad_certificate',
  43: 'unsupported_certificate',
  44: 'certificate_revoked',
  45: 'certificate_expired',
  46: 'certificate_unknown',
  47: 'illegal_parameter',
  48: 'unknown_ca',
  49: 'access_denied',
  50: 'decode_error',
  51: 'decrypt_error',
  70: 'protocol_version',
  71: 'insufficient_security',
  80: 'internal_error',
  86: 'inappropriate_fallback',
  90: 'user_canceled',
  109: 'missing_extension',
  110: 'unsupported_extension',
  112: 'unrecognized_name',
  113: 'bad_certificate_status_response',
  115: 'unknown_psk_identity',
  116: 'certificate_required',
  120: 'no_application_protocol',
};

/** "PROTOCOL_VIOLATION", "CRYPTO_ERROR (bad_certificate)", "0x4242" for unknown codes. */
export function transportErrorName(code: number): string {
  if (code >= 0x100 && code <= 0x1ff) {
    const alert = code - 0x100;
    return `CRYPTO_ERROR (TLS alert ${TLS_ALERTS[alert] ?? alert})`;
  }
  return TRANSPORT_ERRORS[code] ?? `0x${code.toString(16)}`;
}

/** HTTP/3's application code for a close with nothing wrong (RFC 9114, 8.1). */
const H3_NO_ERROR = 0x100;

/**
 * An ordinary close: NO_ERROR, application code 0, or, on a connection that negotiated HTTP/3
 * (`alpn` h3), H3_NO_ERROR: the code an HTTP/3 stack closes with when it is done.
 */
export function isCleanClose(err: ConnectionError, alpn: string | null = null): boolean {
  return err.errorCode === 0 || (err.isApp && err.errorCode === H3_NO_ERROR && alpn === 'h3');
}

/** TLS alerts a client sends when the server's certificate does not verify. */
const VERIFY_ALERTS = new Set([42, 43, 44, 45, 46, 48]);

/**
 * As `describeQuicError`, and when our own client refused the server's certificate, said the
 * way mitmproxy says it: `Certificate verify failed: unknown_ca (local_error: ...)`.
 */
export function describeClose(err: ConnectionError, by: 'peer' | 'local', weAreClient: boolean): string {
  const text = describeQuicError(err, by);
  const alert = err.errorCode - 0x100;
  if (by === 'local' && weAreClient && !err.isApp && VERIFY_ALERTS.has(alert)) {
    return `Certificate verify failed: ${TLS_ALERTS[alert]} (${text})`;
  }
  return text;
}

/**
 * The model's text for a close with an error code: who closed (`peer_error` when the peer
 * sent the CONNECTION_CLOSE, `local_error` when we did), the code and its name, the reason:
 * `peer_error: transport error 0x12a CRYPTO_ERROR (TLS alert bad_certificate)`,
 * `local_error: application error 0x2a: going away`.
 */
export function describeQuicError(err: ConnectionError, by: 'peer' | 'local'): string {
  const code = `0x${err.errorCode.toString(16)}`;
  const what = err.isApp
    ? `application error ${code}`
    : `transport error ${code} ${transportErrorName(err.errorCode)}`;
  const reason = err.reason.length > 0 ? `: ${Buffer.from(err.reason).toString('utf8')}` : '';
  return `${by}_error: ${what}${reason}`;
}
