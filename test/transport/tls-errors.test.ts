/**
 * OpenSSL's alert codes in both spellings: 3.0 (Node 20) says `ERR_SSL_SSLV3_ALERT_*`, 3.5
 * (Node 24 and 26) `ERR_SSL_SSL/TLS_ALERT_*`; what we do with an alert must not depend on which.
 */
import { describe, expect, it } from 'vitest';
import { alertFor } from '../../src/proxy/layers/tls.js';
import { describeClientTlsError, isDistrust, receivedAlert } from '../../src/transport/tls/errors.js';

const engineError = (code: string): Error & { code: string; reason: string } =>
  Object.assign(new Error(code), { code, reason: code.toLowerCase() });

describe('an alert the peer sent, by name', () => {
  it('reads the same from OpenSSL 3.0 and 3.5 codes', () => {
    expect(receivedAlert('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE')).toBe('HANDSHAKE_FAILURE');
    expect(receivedAlert('ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE')).toBe('HANDSHAKE_FAILURE');
    expect(receivedAlert('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA')).toBe('UNKNOWN_CA');
    expect(receivedAlert('ERR_SSL_NO_SHARED_CIPHER')).toBeNull();
    expect(receivedAlert(undefined)).toBeNull();
  });

  it('a client that rejected our certificate is told apart in either spelling', () => {
    for (const code of ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'ERR_SSL_SSL/TLS_ALERT_BAD_CERTIFICATE']) {
      expect(isDistrust(code)).toBe(true);
      expect(describeClientTlsError(engineError(code), 'a.test')).toMatch(
        /^The client does not trust the certificate for a.test/,
      );
    }
    expect(isDistrust('ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE')).toBe(false);
  });

  it("the proxy forwards the server leg's alert to the client leg in either spelling", () => {
    expect(alertFor('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE')).toBe(40);
    expect(alertFor('ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE')).toBe(40);
    expect(alertFor('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION')).toBe(70);
    expect(alertFor('ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL')).toBe(120);
    expect(alertFor('ERR_SSL_WRONG_SSL_VERSION')).toBe(70);
    expect(alertFor(null)).toBe(40);
  });
});
