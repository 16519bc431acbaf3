/**
 * Cipher suite names. wirelayer reports every cipher by its IANA name, whatever the engine
 * (OpenSSL names for TLS/DTLS, library enums for QUIC) called it.
 */
import { IANA_CIPHER_SUITES } from './cipher-suites.js';
import { OPENSSL_CIPHER_CODES } from './openssl-cipher-names.js';

export { IANA_CIPHER_SUITES } from './cipher-suites.js';
export { OPENSSL_CIPHER_CODES } from './openssl-cipher-names.js';

const IANA_NAMES: ReadonlySet<string> = new Set(IANA_CIPHER_SUITES.values());

/** The IANA name of a cipher suite code, or null when the code is not assigned. */
export function cipherSuiteName(code: number): string | null {
  return IANA_CIPHER_SUITES.get(code) ?? null;
}

/**
 * The IANA name of a cipher suite given as a wire code, an OpenSSL name
 * (`ECDHE-RSA-AES128-GCM-SHA256`) or an IANA name; null when it names nothing known.
 */
export function ianaCipherName(nameOrCode: string | number): string | null {
  if (typeof nameOrCode === 'number') return cipherSuiteName(nameOrCode);
  if (IANA_NAMES.has(nameOrCode)) return nameOrCode;
  const code = OPENSSL_CIPHER_CODES.get(nameOrCode);
  return code === undefined ? null : cipherSuiteName(code);
}

/** The wire code of a cipher suite given by IANA or OpenSSL name, or null. */
export function cipherSuiteCode(name: string): number | null {
  const code = OPENSSL_CIPHER_CODES.get(name);
  if (code !== undefined) return code;
  for (const [c, n] of IANA_CIPHER_SUITES) if (n === name) return c;
  return null;
}
