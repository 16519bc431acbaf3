/**
 * Address validation tokens for Retry (RFC 9000, 8.1.2): stateless, bound to the client's
 * address and port and to the Retry's connection ID, carrying the original DCID that quiche
 * needs for its transport parameters, and valid for a short time.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const MAGIC = 0x57; // 'W'
const MAC_LENGTH = 16;
/** How long a Retry token is good for. */
export const RETRY_TOKEN_LIFETIME_MS = 10_000;

export class RetryTokens {
  readonly #key = randomBytes(32);

  constructor(readonly lifetimeMs = RETRY_TOKEN_LIFETIME_MS) {}

  #mac(time: Buffer, odcid: Uint8Array, retryScid: Uint8Array, address: string, port: number): Buffer {
    return createHmac('sha256', this.#key)
      .update(time)
      .update(odcid)
      .update(retryScid)
      .update(`${address}\0${port}`)
      .digest()
      .subarray(0, MAC_LENGTH);
  }

  /** A token for a client at address:port whose first DCID was `odcid`, retried to `retryScid`. */
  mint(
    odcid: Uint8Array,
    retryScid: Uint8Array,
    address: string,
    port: number,
    nowMs = performance.now(),
  ): Buffer {
    const time = Buffer.alloc(8);
    // the monotonic clock: the key lives only as long as the process, and so do its tokens
    time.writeBigUInt64BE(BigInt(Math.floor(nowMs)));
    return Buffer.concat([
      Buffer.of(MAGIC, odcid.length),
      time,
      odcid,
      this.#mac(time, odcid, retryScid, address, port),
    ]);
  }

  /**
   * The original DCID a valid token carries, or null (not ours, altered, another address,
   * another connection ID, or expired).
   */
  verify(
    token: Uint8Array,
    retryScid: Uint8Array,
    address: string,
    port: number,
    nowMs = performance.now(),
  ): Uint8Array | null {
    if (token.length < 2 + 8 + MAC_LENGTH || token[0] !== MAGIC) return null;
    const odcidLength = token[1]!;
    if (token.length !== 2 + 8 + odcidLength + MAC_LENGTH) return null;
    const bytes = Buffer.from(token.buffer, token.byteOffset, token.byteLength);
    const time = bytes.subarray(2, 10);
    const odcid = bytes.subarray(10, 10 + odcidLength);
    const mac = bytes.subarray(10 + odcidLength);
    if (!timingSafeEqual(mac, this.#mac(time, odcid, retryScid, address, port))) return null;
    const age = nowMs - Number(time.readBigUInt64BE());
    if (age < 0 || age > this.lifetimeMs) return null;
    return Uint8Array.from(odcid);
  }
}
