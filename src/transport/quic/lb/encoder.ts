/**
 * Server ID and nonce to connection ID, for every QUIC-LB encoding: the first octet, then the
 * plaintext as is (no key), one AES block (16 octets) or the four-pass Feistel network. Works
 * on batches so the generator pays one OpenSSL call per round per batch.
 */
import type { ResolvedQuicLbConfig } from './config.js';
import { FourPass } from './four-pass.js';
import { SINGLE_PASS_LENGTH, SinglePass } from './single-pass.js';

export class QuicLbEncoder {
  readonly config: ResolvedQuicLbConfig;
  /** Server ID and nonce, octets. */
  readonly plaintextLength: number;
  readonly batch: number;
  readonly #single: SinglePass | null;
  readonly #four: FourPass | null;

  constructor(config: ResolvedQuicLbConfig, batch: number) {
    this.config = config;
    this.batch = batch;
    this.plaintextLength = config.cidLength - 1;
    const key = config.key;
    this.#single = key !== null && this.plaintextLength === SINGLE_PASS_LENGTH ? new SinglePass(key) : null;
    this.#four =
      key !== null && this.plaintextLength !== SINGLE_PASS_LENGTH
        ? new FourPass(key, this.plaintextLength, batch)
        : null;
  }

  /**
   * Encodes `count` plaintexts, consecutive in `plain` (`plaintextLength` octets each; the
   * four-pass encoding scrambles them in place), into IDs written consecutively to `out`.
   */
  encode(plain: Buffer, count: number, out: Buffer): void {
    const length = this.plaintextLength;
    let body = plain;
    if (this.#single !== null) body = this.#single.encrypt(plain.subarray(0, count * length));
    else if (this.#four !== null) this.#four.encrypt(plain, 0, length, count);
    const first = this.config.firstOctet;
    const cidLength = length + 1;
    for (let i = 0; i < count; i++) {
      out[i * cidLength] = first;
      body.copy(out, i * cidLength + 1, i * length, (i + 1) * length);
    }
  }
}
