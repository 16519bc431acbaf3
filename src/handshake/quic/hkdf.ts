import { createHmac } from 'node:crypto';

/** Hash functions of the TLS 1.3 cipher suites QUIC uses. */
export type HkdfHash = 'sha256' | 'sha384';

const HASH_LENGTH: Record<HkdfHash, number> = { sha256: 32, sha384: 48 };

/** HKDF-Extract (RFC 5869, 2.2): HMAC(salt, ikm). */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array, hash: HkdfHash = 'sha256'): Uint8Array {
  return new Uint8Array(createHmac(hash, salt).update(ikm).digest());
}

/** HKDF-Expand (RFC 5869, 2.3). */
export function hkdfExpand(
  prk: Uint8Array,
  info: Uint8Array,
  length: number,
  hash: HkdfHash = 'sha256',
): Uint8Array {
  const hashLength = HASH_LENGTH[hash];
  if (length > 255 * hashLength) throw new RangeError(`HKDF-Expand output too long: ${length}`);
  const out = new Uint8Array(length);
  let previous = new Uint8Array(0);
  for (let filled = 0, counter = 1; filled < length; counter++) {
    const block = createHmac(hash, prk).update(previous).update(info).update(Uint8Array.of(counter)).digest();
    out.set(block.subarray(0, Math.min(block.length, length - filled)), filled);
    filled += block.length;
    previous = new Uint8Array(block);
  }
  return out;
}

/**
 * HKDF-Expand-Label of TLS 1.3 (RFC 8446, 7.1): the info is the output length, the label
 * prefixed with "tls13 ", and the context, each length-prefixed.
 */
export function hkdfExpandLabel(
  secret: Uint8Array,
  label: string,
  context: Uint8Array,
  length: number,
  hash: HkdfHash = 'sha256',
): Uint8Array {
  return hkdfExpand(secret, encodeHkdfLabel(label, context, length), length, hash);
}

/** The HkdfLabel structure of RFC 8446, 7.1, used as HKDF-Expand's info. */
export function encodeHkdfLabel(label: string, context: Uint8Array, length: number): Uint8Array {
  const fullLabel = Buffer.from(`tls13 ${label}`, 'ascii');
  const info = new Uint8Array(2 + 1 + fullLabel.length + 1 + context.length);
  info[0] = length >> 8;
  info[1] = length & 0xff;
  info[2] = fullLabel.length;
  info.set(fullLabel, 3);
  info[3 + fullLabel.length] = context.length;
  info.set(context, 4 + fullLabel.length);
  return info;
}
