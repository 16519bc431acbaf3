/**
 * QUIC-LB's single-pass encryption: when the server ID and nonce are exactly 16 octets they are
 * one AES-128-ECB block, encrypted once. Batches go through OpenSSL in one call.
 */
import { type Cipher, createCipheriv, createDecipheriv, type Decipher } from 'node:crypto';

export const SINGLE_PASS_LENGTH = 16;

export class SinglePass {
  readonly #cipher: Cipher;
  readonly #decipher: Decipher;

  constructor(key: Uint8Array) {
    // ECB keeps no state between blocks: the objects are reused for every ID
    this.#cipher = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false);
    this.#decipher = createDecipheriv('aes-128-ecb', key, null).setAutoPadding(false);
  }

  /** Consecutive 16-octet plaintexts, encrypted; the result is a new buffer of the same length. */
  encrypt(blocks: Uint8Array): Buffer {
    return this.#cipher.update(blocks);
  }

  /** Consecutive 16-octet ciphertexts, decrypted. */
  decrypt(blocks: Uint8Array): Buffer {
    return this.#decipher.update(blocks);
  }
}
