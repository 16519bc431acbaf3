/**
 * QUIC-LB configurations (draft-ietf-quic-load-balancers, the editor's copy after -19): a config
 * ID (0..6, the first octet's three high bits), a server ID, a nonce length and optionally a
 * 16-octet AES key; or none at all, when the server's IDs carry no route (the `0b111`
 * codepoint). Pure: parsing and checking, no crypto.
 */

/** A QUIC-LB configuration that does not hold together: `code` is ERR_QUIC_LB_CONFIG. */
export class QuicLbConfigError extends Error {
  override readonly name = 'QuicLbConfigError';
  readonly code = 'ERR_QUIC_LB_CONFIG';
}

/** A configuration whose IDs a load balancer routes: it decodes `serverId` from each. */
export interface QuicLbRoutableConfig {
  /** 0..6: the config rotation codepoint (7 is the unroutable one). */
  readonly configId: number;
  /** 1..15 octets, unique to this server in the pool. */
  readonly serverId: Uint8Array;
  /** 4..18 octets; server ID and nonce together at most 19 (QUIC v1's 20-octet IDs, less the first octet). */
  readonly nonceLength: number;
  /** 16 octets (AES-128): the IDs are encrypted, single-pass when server ID + nonce = 16, four-pass otherwise. */
  readonly key?: Uint8Array | null;
}

/**
 * IDs that tell a QUIC-LB balancer to fall back to the 4-tuple (first octet `0b111xxxxx`, the
 * rest random): a server without a configuration. It sends `disable_active_migration` and
 * issues no spare IDs, as the draft asks.
 */
export interface QuicLbUnroutableConfig {
  readonly unroutable: true;
  /** Length of each ID, 8..20 (default 16). */
  readonly length?: number;
}

/** A QUIC-LB configuration for `quicLbCids`. */
export type QuicLbConfig = QuicLbRoutableConfig | QuicLbUnroutableConfig;

/** Which of the draft's encodings a configuration uses. */
export type QuicLbEncoding = 'plaintext' | 'single-pass' | 'four-pass' | 'unroutable';

/** A configuration checked, with what follows from it. */
export interface ResolvedQuicLbConfig {
  readonly encoding: QuicLbEncoding;
  /** 7 for unroutable IDs. */
  readonly configId: number;
  readonly serverId: Buffer;
  readonly nonceLength: number;
  readonly key: Buffer | null;
  /** First octet, server ID and nonce. */
  readonly cidLength: number;
  /** The first octet of every ID: config ID, then the length of what follows it (self-described). */
  readonly firstOctet: number;
}

export const MAX_CONFIG_ID = 6;
export const UNROUTABLE_CONFIG_ID = 7;
export const MIN_SERVER_ID = 1;
export const MAX_SERVER_ID = 15;
export const MIN_NONCE = 4;
export const MAX_NONCE = 18;
/** Server ID and nonce at most: QUIC v1 IDs are 20 octets, the first octet aside. */
export const MAX_PLAINTEXT = 19;
export const KEY_LENGTH = 16;
const DEFAULT_UNROUTABLE_LENGTH = 16;
/** The draft: unroutable IDs SHOULD be at least 8 octets (7 of entropy after the first). */
const MIN_UNROUTABLE_LENGTH = 8;
const MAX_CID_LENGTH = 20;

function integerIn(value: number, min: number, max: number, what: string): number {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new QuicLbConfigError(`${what} must be an integer in ${min}..${max}, not ${value}`);
  return value;
}

/** Checks a configuration and works out its encoding, lengths and first octet. */
export function resolveQuicLbConfig(config: QuicLbConfig): ResolvedQuicLbConfig {
  if ('unroutable' in config) {
    const length = integerIn(
      config.length ?? DEFAULT_UNROUTABLE_LENGTH,
      MIN_UNROUTABLE_LENGTH,
      MAX_CID_LENGTH,
      'unroutable ID length',
    );
    return {
      encoding: 'unroutable',
      configId: UNROUTABLE_CONFIG_ID,
      serverId: Buffer.alloc(0),
      nonceLength: length - 1,
      key: null,
      cidLength: length,
      firstOctet: (UNROUTABLE_CONFIG_ID << 5) | (length - 1),
    };
  }
  const configId = integerIn(config.configId, 0, MAX_CONFIG_ID, 'config ID');
  const serverId = Buffer.from(config.serverId);
  integerIn(serverId.length, MIN_SERVER_ID, MAX_SERVER_ID, 'server ID length (octets)');
  const nonceLength = integerIn(config.nonceLength, MIN_NONCE, MAX_NONCE, 'nonce length (octets)');
  const plaintext = serverId.length + nonceLength;
  if (plaintext > MAX_PLAINTEXT)
    throw new QuicLbConfigError(
      `server ID (${serverId.length}) and nonce (${nonceLength}) octets must sum to ${MAX_PLAINTEXT} at most`,
    );
  const key = config.key == null ? null : Buffer.from(config.key);
  if (key !== null && key.length !== KEY_LENGTH)
    throw new QuicLbConfigError(`key must be ${KEY_LENGTH} octets (AES-128), not ${key.length}`);
  return {
    encoding: key === null ? 'plaintext' : plaintext === 16 ? 'single-pass' : 'four-pass',
    configId,
    serverId,
    nonceLength,
    key,
    cidLength: 1 + plaintext,
    firstOctet: (configId << 5) | plaintext,
  };
}

function hexBytes(text: string, what: string): Buffer {
  if (text.length === 0 || text.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(text))
    throw new QuicLbConfigError(`${what} must be hex digits, two per octet: ${JSON.stringify(text)}`);
  return Buffer.from(text, 'hex');
}

/**
 * The command line's form, `CONFIG_ID:SERVER_ID_HEX:NONCE_LEN[:KEY_HEX]` (e.g.
 * `0:c4605e:4`, `1:ed793a51d4:5:8f95f09245765f80256934e50c66207f`), or `unroutable[:LENGTH]`.
 */
export function parseQuicLbConfig(text: string): QuicLbConfig {
  const parts = text.trim().split(':');
  if (parts[0] === 'unroutable') {
    if (parts.length > 2) throw new QuicLbConfigError(`unroutable[:LENGTH], not ${JSON.stringify(text)}`);
    const config: QuicLbUnroutableConfig =
      parts[1] === undefined ? { unroutable: true } : { unroutable: true, length: Number(parts[1]) };
    resolveQuicLbConfig(config);
    return config;
  }
  if (parts.length < 3 || parts.length > 4)
    throw new QuicLbConfigError(
      `CONFIG_ID:SERVER_ID_HEX:NONCE_LEN[:KEY_HEX] or unroutable[:LENGTH], not ${JSON.stringify(text)}`,
    );
  const [id, sid, nonce, key] = parts as [string, string, string, string | undefined];
  if (!/^\d+$/.test(id) || !/^\d+$/.test(nonce))
    throw new QuicLbConfigError(`CONFIG_ID and NONCE_LEN are decimal integers: ${JSON.stringify(text)}`);
  const config: QuicLbRoutableConfig = {
    configId: Number(id),
    serverId: hexBytes(sid, 'SERVER_ID_HEX'),
    nonceLength: Number(nonce),
    key: key === undefined ? null : hexBytes(key, 'KEY_HEX'),
  };
  resolveQuicLbConfig(config);
  return config;
}
