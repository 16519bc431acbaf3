import { type Cipher, createCipheriv, createDecipheriv } from 'node:crypto';
import { HandshakeParseError } from '../errors.js';
import { type HkdfHash, hkdfExpandLabel } from './hkdf.js';
import { asUint8Array } from './reader.js';
import { type QuicVersion, versionParameters } from './version.js';

/** The AEADs QUIC packet protection uses (RFC 9001, 5.3), by their node:crypto names. */
export type QuicAead = 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';

const AEAD_KEY_LENGTH: Record<QuicAead, number> = {
  'aes-128-gcm': 16,
  'aes-256-gcm': 32,
  'chacha20-poly1305': 32,
};
const AEAD_HASH: Record<QuicAead, HkdfHash> = {
  'aes-128-gcm': 'sha256',
  'aes-256-gcm': 'sha384',
  'chacha20-poly1305': 'sha256',
};

export const AEAD_TAG_LENGTH = 16;
/** Header protection samples 16 bytes, starting 4 bytes after the packet number starts (RFC 9001, 5.4.2). */
export const HP_SAMPLE_LENGTH = 16;
const HP_SAMPLE_OFFSET = 4;

/** The three values that protect one direction at one encryption level. */
export interface PacketKeys {
  readonly aead: QuicAead;
  readonly key: Uint8Array;
  readonly iv: Uint8Array;
  readonly hp: Uint8Array;
}

/** Derives key, iv and hp from a traffic secret with the version's labels (RFC 9001, 5.1; RFC 9369, 3.3.2). */
export function derivePacketKeys(secret: Uint8Array, aead: QuicAead, version: QuicVersion): PacketKeys {
  const prefix = versionParameters(version).labelPrefix;
  const hash = AEAD_HASH[aead];
  const keyLength = AEAD_KEY_LENGTH[aead];
  const empty = new Uint8Array(0);
  return {
    aead,
    key: hkdfExpandLabel(secret, `${prefix} key`, empty, keyLength, hash),
    iv: hkdfExpandLabel(secret, `${prefix} iv`, empty, 12, hash),
    hp: hkdfExpandLabel(secret, `${prefix} hp`, empty, keyLength, hash),
  };
}

/**
 * Reconstructs a full packet number from its truncated encoding (RFC 9000, appendix A.3).
 * `largest` is the largest packet number received so far in the space, -1 if none.
 */
export function decodePacketNumber(largest: number, truncated: number, pnBits: number): number {
  const expected = largest + 1;
  const window = 2 ** pnBits;
  const halfWindow = window / 2;
  const candidate = expected - (expected % window) + truncated;
  if (candidate <= expected - halfWindow && candidate < 2 ** 62 - window) return candidate + window;
  if (candidate > expected + halfWindow && candidate >= window) return candidate - window;
  return candidate;
}

/** A packet after header and payload protection were removed. `payload` is a fresh buffer. */
export interface UnprotectedPacket {
  /** The first byte with header protection removed. */
  readonly firstByte: number;
  readonly packetNumber: number;
  /** Length of the packet number encoding, 1 to 4 bytes. */
  readonly pnLength: number;
  readonly payload: Uint8Array;
}

/**
 * Holds one direction's keys, ready to remove (or apply) QUIC packet protection. The AES
 * header protection cipher is created once and reused (ECB without padding is stateless per
 * block); the AEAD needs one decipher per packet, since node:crypto fixes the nonce at creation.
 */
export class PacketProtector {
  readonly keys: PacketKeys;
  private readonly ecb: Cipher | undefined;
  private readonly nonce = new Uint8Array(12);
  private aadScratch = new Uint8Array(64);

  constructor(keys: PacketKeys) {
    this.keys = keys;
    if (keys.aead !== 'chacha20-poly1305') {
      const ecb = createCipheriv(keys.aead === 'aes-128-gcm' ? 'aes-128-ecb' : 'aes-256-ecb', keys.hp, null);
      ecb.setAutoPadding(false);
      this.ecb = ecb;
    }
  }

  /** The 5-byte header protection mask for a 16-byte sample (RFC 9001, 5.4.3 and 5.4.4). */
  headerMask(sample: Uint8Array): Uint8Array {
    if (this.ecb) return this.ecb.update(sample);
    // ChaCha20: counter = sample[0..4] (little-endian), nonce = sample[4..16]; OpenSSL's
    // 16-byte chacha20 IV is exactly counter || nonce, so the sample is the IV.
    return createCipheriv('chacha20', this.keys.hp, sample).update(new Uint8Array(5));
  }

  private setNonce(packetNumber: number): Uint8Array {
    const nonce = this.nonce;
    nonce.set(this.keys.iv);
    const high = Math.floor(packetNumber / 0x100000000);
    const low = packetNumber >>> 0;
    nonce[4] = nonce[4]! ^ ((high >>> 24) & 0xff);
    nonce[5] = nonce[5]! ^ ((high >>> 16) & 0xff);
    nonce[6] = nonce[6]! ^ ((high >>> 8) & 0xff);
    nonce[7] = nonce[7]! ^ (high & 0xff);
    nonce[8] = nonce[8]! ^ (low >>> 24);
    nonce[9] = nonce[9]! ^ ((low >>> 16) & 0xff);
    nonce[10] = nonce[10]! ^ ((low >>> 8) & 0xff);
    nonce[11] = nonce[11]! ^ (low & 0xff);
    return nonce;
  }

  /**
   * AEAD-decrypts `sealed` (ciphertext then tag) with the nonce of `packetNumber` and `aad` as
   * associated data. Throws HandshakeParseError `quic-decryption-failed` when the tag does not
   * verify. `sealed` must hold at least the tag.
   */
  open(packetNumber: number, aad: Uint8Array, sealed: Uint8Array): Uint8Array {
    const tagAt = sealed.length - AEAD_TAG_LENGTH;
    if (tagAt < 0)
      throw HandshakeParseError.at('quic-truncated', 'packet shorter than its AEAD tag', sealed, 0);
    const nonce = this.setNonce(packetNumber);
    const options = { authTagLength: AEAD_TAG_LENGTH };
    const { aead, key } = this.keys;
    const decipher =
      aead === 'chacha20-poly1305'
        ? createDecipheriv(aead, key, nonce, options)
        : createDecipheriv(aead, key, nonce, options);
    decipher.setAAD(aad, { plaintextLength: tagAt });
    const plaintext = asUint8Array(decipher.update(sealed.subarray(0, tagAt)));
    decipher.setAuthTag(sealed.subarray(tagAt));
    try {
      decipher.final();
    } catch {
      throw HandshakeParseError.at('quic-decryption-failed', 'packet does not authenticate', sealed, tagAt);
    }
    return plaintext;
  }

  /** AEAD-encrypts `plaintext`, returning ciphertext then tag. */
  seal(packetNumber: number, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const nonce = this.setNonce(packetNumber);
    const options = { authTagLength: AEAD_TAG_LENGTH };
    const { aead, key } = this.keys;
    const cipher =
      aead === 'chacha20-poly1305'
        ? createCipheriv(aead, key, nonce, options)
        : createCipheriv(aead, key, nonce, options);
    cipher.setAAD(aad, { plaintextLength: plaintext.length });
    const body = cipher.update(plaintext);
    cipher.final();
    const out = new Uint8Array(body.length + AEAD_TAG_LENGTH);
    out.set(body);
    out.set(cipher.getAuthTag(), body.length);
    return out;
  }

  /**
   * Removes header and payload protection from the packet in `bytes[start, end)` whose packet
   * number starts at `pnOffset` (RFC 9001, 5.4). `bytes` is not modified: the unprotected
   * header is rebuilt in a scratch buffer to serve as associated data. Throws
   * HandshakeParseError on a packet too short to sample or one that does not authenticate.
   */
  unprotect(
    bytes: Uint8Array,
    start: number,
    pnOffset: number,
    end: number,
    largestPn: number,
  ): UnprotectedPacket {
    const sampleAt = pnOffset + HP_SAMPLE_OFFSET;
    if (sampleAt + HP_SAMPLE_LENGTH > end) {
      throw HandshakeParseError.at(
        'quic-truncated',
        'packet too short for the header protection sample',
        bytes,
        pnOffset,
      );
    }
    const mask = this.headerMask(bytes.subarray(sampleAt, sampleAt + HP_SAMPLE_LENGTH));
    const protectedFirst = bytes[start]!;
    const firstByte = protectedFirst ^ (mask[0]! & (protectedFirst & 0x80 ? 0x0f : 0x1f));
    const pnLength = (firstByte & 0x03) + 1;
    const headerLength = pnOffset + pnLength - start;
    if (this.aadScratch.length < headerLength) this.aadScratch = new Uint8Array(headerLength * 2);
    const aad = this.aadScratch.subarray(0, headerLength);
    for (let i = 1; i < headerLength; i++) aad[i] = bytes[start + i]!;
    aad[0] = firstByte;
    let truncated = 0;
    for (let i = 0; i < pnLength; i++) {
      const at = pnOffset - start + i;
      const value = aad[at]! ^ mask[1 + i]!;
      aad[at] = value;
      truncated = truncated * 256 + value;
    }
    const packetNumber = decodePacketNumber(largestPn, truncated, pnLength * 8);
    const payload = this.open(packetNumber, aad, bytes.subarray(pnOffset + pnLength, end));
    return { firstByte, packetNumber, pnLength, payload };
  }
}
