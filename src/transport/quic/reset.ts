/**
 * Stateless resets (RFC 9000, section 10.3). The token of each connection ID we issue is
 * HMAC-SHA256(key, ID) cut to 16 octets (as quic-go's), not random: whoever holds the key can
 * tell a client that a connection is gone, including another instance behind the same
 * balancer, or this one after a restart. Without a shared key the key is random per process
 * and no reset is ever sent (as quic-go without a `StatelessResetKey`).
 */
import { createHmac, randomBytes, randomFillSync, randomInt } from 'node:crypto';

/** A reset is at least 5 octets of header and 16 of token (RFC 9000, 10.3: 38 unpredictable bits). */
export const MIN_RESET = 21;
/** RFC 9000, 10.3: answering a packet of this size or less, send one octet less. */
const SHORT_TRIGGER = 43;
/** Longer triggers get 42 octets plus up to this many more, at random (no fixed size to spot). */
const RESET_SPREAD = 20;
const TOKEN = 16;

export class StatelessResets {
  /** Resets are sent (a key was given). */
  readonly enabled: boolean;
  readonly #key: Buffer;

  constructor(key: Uint8Array | null | undefined) {
    this.enabled = key != null;
    this.#key = key != null ? Buffer.from(key) : randomBytes(32);
  }

  /** The token of `cid` as quiche takes it (a 128-bit big-endian integer). */
  token(cid: Uint8Array): bigint {
    const mac = this.#mac(cid);
    return (mac.readBigUInt64BE(0) << 64n) | mac.readBigUInt64BE(8);
  }

  #mac(cid: Uint8Array): Buffer {
    return createHmac('sha256', this.#key).update(cid).digest();
  }

  /**
   * A Stateless Reset answering a datagram of `triggerLength` octets whose DCID is `cid`, or
   * null when none may be sent: each reset is smaller than its trigger (no loops between two
   * endpoints resetting each other, no amplification), so triggers of 21 octets or less get none.
   */
  build(cid: Uint8Array, triggerLength: number): Buffer | null {
    if (triggerLength <= MIN_RESET) return null;
    const size =
      triggerLength <= SHORT_TRIGGER
        ? triggerLength - 1
        : SHORT_TRIGGER - 1 + randomInt(Math.min(triggerLength - SHORT_TRIGGER, RESET_SPREAD) + 1);
    const reset = Buffer.allocUnsafe(size);
    randomFillSync(reset, 0, size - TOKEN);
    // a short header: form bit 0, fixed bit 1, the rest unpredictable
    reset[0] = (reset[0]! & 0x3f) | 0x40;
    this.#mac(cid).copy(reset, size - TOKEN, 0, TOKEN);
    return reset;
  }
}
