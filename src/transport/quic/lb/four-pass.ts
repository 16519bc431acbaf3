/**
 * QUIC-LB's four-pass encryption: a four-round Feistel network over the server ID and nonce
 * (any length but 16 octets), AES-128-ECB as the round function. Both halves are `half`
 * octets; when the length is odd they share the middle octet, the left half keeping its high
 * nibble and the right half its low one. Works on batches: each round is one AES call for
 * every ID of the batch (one JS-to-OpenSSL crossing and one output buffer per round, not per ID).
 */
import { type Cipher, createCipheriv } from 'node:crypto';

const BLOCK = 16;

export class FourPass {
  /** Server ID and nonce, octets. */
  readonly length: number;
  readonly #half: number;
  readonly #odd: boolean;
  readonly #cipher: Cipher;
  readonly #batch: number;
  /** Round inputs: `expand(length, pass, half)` per ID, the zero padding and length written once. */
  readonly #blocks: Buffer;
  readonly #left: Buffer;
  readonly #right: Buffer;

  constructor(key: Uint8Array, length: number, batch: number) {
    this.length = length;
    this.#half = Math.ceil(length / 2);
    this.#odd = length % 2 === 1;
    this.#batch = batch;
    // ECB keeps no state between blocks: one cipher serves every round of every ID
    this.#cipher = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false);
    this.#blocks = Buffer.alloc(batch * BLOCK);
    for (let i = 0; i < batch; i++) this.#blocks[i * BLOCK + 14] = length;
    this.#left = Buffer.alloc(batch * this.#half);
    this.#right = Buffer.alloc(batch * this.#half);
  }

  /** Encrypts `count` plaintexts in place, each `length` octets at `data[offset + i * stride]`. */
  encrypt(data: Uint8Array, offset: number, stride: number, count: number): void {
    this.#check(count);
    this.#split(data, offset, stride, count);
    this.#round(1, true, count);
    this.#round(2, false, count);
    this.#round(3, true, count);
    this.#round(4, false, count);
    this.#join(data, offset, stride, count);
  }

  /**
   * Decrypts in place. With `serverIdLength` at most half the length, the server ID is whole
   * after three passes (the draft's shortcut); the nonce is then left unrecovered.
   */
  decrypt(
    data: Uint8Array,
    offset: number,
    stride: number,
    count: number,
    serverIdLength = this.length,
  ): void {
    this.#check(count);
    this.#split(data, offset, stride, count);
    this.#round(4, false, count);
    this.#round(3, true, count);
    this.#round(2, false, count);
    if (serverIdLength > Math.floor(this.length / 2)) this.#round(1, true, count);
    this.#join(data, offset, stride, count);
  }

  #check(count: number): void {
    if (!Number.isInteger(count) || count < 0 || count > this.#batch)
      throw new RangeError(`batch of ${count}: 0..${this.#batch} IDs at a time`);
  }

  /** left_0 and right_0 of each ID; an odd length splits the middle octet by nibbles. */
  #split(data: Uint8Array, offset: number, stride: number, count: number): void {
    const half = this.#half;
    const left = this.#left;
    const right = this.#right;
    const rightStart = this.length - half;
    for (let i = 0, at = offset, h = 0; i < count; i++, at += stride, h += half) {
      for (let j = 0; j < half; j++) {
        left[h + j] = data[at + j]!;
        right[h + j] = data[at + rightStart + j]!;
      }
      if (this.#odd) {
        left[h + half - 1] = left[h + half - 1]! & 0xf0;
        right[h] = right[h]! & 0x0f;
      }
    }
  }

  /** One pass: the other half ^= truncate(AES(expand(length, pass, this half))). */
  #round(pass: number, fromLeft: boolean, count: number): void {
    const half = this.#half;
    const blocks = this.#blocks;
    const from = fromLeft ? this.#left : this.#right;
    const to = fromLeft ? this.#right : this.#left;
    for (let i = 0, b = 0, h = 0; i < count; i++, b += BLOCK, h += half) {
      for (let j = 0; j < half; j++) blocks[b + j] = from[h + j]!;
      blocks[b + 15] = pass;
    }
    const out = this.#cipher.update(blocks.subarray(0, count * BLOCK));
    for (let i = 0, b = 0, h = 0; i < count; i++, b += BLOCK, h += half) {
      for (let j = 0; j < half; j++) to[h + j] = to[h + j]! ^ out[b + j]!;
      if (this.#odd) {
        // the right half owns the middle octet's low nibble, the left half its high one
        if (fromLeft) to[h] = to[h]! & 0x0f;
        else to[h + half - 1] = to[h + half - 1]! & 0xf0;
      }
    }
  }

  #join(data: Uint8Array, offset: number, stride: number, count: number): void {
    const half = this.#half;
    const left = this.#left;
    const right = this.#right;
    const rightStart = this.length - half;
    for (let i = 0, at = offset, h = 0; i < count; i++, at += stride, h += half) {
      for (let j = 0; j < half; j++) data[at + j] = left[h + j]!;
      if (this.#odd) {
        data[at + half - 1] = data[at + half - 1]! | right[h]!;
        for (let j = 1; j < half; j++) data[at + rightStart + j] = right[h + j]!;
      } else {
        for (let j = 0; j < half; j++) data[at + rightStart + j] = right[h + j]!;
      }
    }
  }
}
