/**
 * Keys that several listeners share so that any of them can finish what another started
 * (RFC 9000 section 10.3; quic-go's `StatelessResetKey` and `TokenGeneratorKey`): behind a
 * load balancer, a Retry token minted by one instance is accepted by another, and an instance
 * that does not hold a connection resets it with the token the one that held it gave out.
 *
 * The file of `--quic-secrets` is a JSON object with one or both keys as hex strings of at
 * least 32 octets (64 hex digits), nothing else:
 *
 *   { "statelessResetKey": "<64+ hex digits>", "tokenKey": "<64+ hex digits>" }
 *
 * (`openssl rand -hex 32` makes one key.) Keep it as private as a TLS key.
 */
import { readFileSync } from 'node:fs';

/** Shared keys of a QUIC listener (each at least 32 octets). */
export interface QuicSecrets {
  /**
   * Stateless reset tokens are HMAC-SHA256(key, connection ID), first 16 octets: every
   * instance holding the key can reset a connection another instance issued the ID for, and
   * the listener sends Stateless Resets only when given this key.
   */
  readonly statelessResetKey?: Uint8Array;
  /** Retry tokens are MACed with this key, so any instance holding it accepts them. */
  readonly tokenKey?: Uint8Array;
}

/** A secrets file or object that is not usable: `code` is ERR_QUIC_SECRETS. */
export class QuicSecretsError extends Error {
  override readonly name = 'QuicSecretsError';
  readonly code = 'ERR_QUIC_SECRETS';
}

/** The shortest key accepted, octets (HMAC-SHA256's output length). */
export const MIN_SECRET_LENGTH = 32;
const KEYS = ['statelessResetKey', 'tokenKey'] as const;

/** Throws a QuicSecretsError unless every key given is at least MIN_SECRET_LENGTH octets. */
export function checkQuicSecrets(secrets: QuicSecrets): void {
  for (const name of KEYS) {
    const key = secrets[name];
    if (key === undefined) continue;
    if (!(key instanceof Uint8Array))
      throw new QuicSecretsError(`${name} must be bytes (a Buffer or Uint8Array)`);
    if (key.length < MIN_SECRET_LENGTH)
      throw new QuicSecretsError(`${name} must be ${MIN_SECRET_LENGTH} octets or more, not ${key.length}`);
  }
}

/** The `--quic-secrets` file format (see the file comment), from its text. */
export function parseQuicSecrets(text: string): QuicSecrets {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new QuicSecretsError(`not JSON: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new QuicSecretsError('must be a JSON object {"statelessResetKey": HEX, "tokenKey": HEX}');
  const fields = json as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !(KEYS as readonly string[]).includes(k));
  if (unknown.length > 0)
    throw new QuicSecretsError(`unknown field ${unknown.join(', ')} (statelessResetKey, tokenKey only)`);
  const secrets: { statelessResetKey?: Buffer; tokenKey?: Buffer } = {};
  for (const name of KEYS) {
    const value = fields[name];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(value))
      throw new QuicSecretsError(`${name} must be a string of hex digits, two per octet`);
    secrets[name] = Buffer.from(value, 'hex');
  }
  if (secrets.statelessResetKey === undefined && secrets.tokenKey === undefined)
    throw new QuicSecretsError('holds neither statelessResetKey nor tokenKey');
  checkQuicSecrets(secrets);
  return secrets;
}

/** Reads and parses a `--quic-secrets` file; errors name the file. */
export function readQuicSecrets(path: string): QuicSecrets {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new QuicSecretsError(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return parseQuicSecrets(text);
  } catch (e) {
    throw new QuicSecretsError(`${path}: ${(e as Error).message}`);
  }
}
