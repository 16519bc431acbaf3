/**
 * Address validation tokens for Retry (RFC 9000, 8.1.2): stateless, bound to the client's
 * address and port and to the Retry's connection ID, carrying the original DCID that quiche
 * needs for its transport parameters, and valid for a short time. Checking one is an HMAC
 * over the header's bytes: a forged token costs no key derivation and no decryption. The key
 * is random per listener unless shared (`secrets.tokenKey`): then any instance holding it
 * accepts the tokens of another, so the time in a token is the wall clock (instances are
 * different processes, often different machines), with some slack for their clocks' skew.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const MAGIC = 0x57; // 'W'
const MAC_LENGTH = 16;
const TIME_LENGTH = 8;
/** Connection IDs are 20 bytes at most (RFC 9000, 17.2). */
const MAX_CID = 20;
/** An IPv6 address with a zone fits (45 characters, plus the zone). */
const MAX_ADDRESS = 64;
/** How long a Retry token is good for. */
export const RETRY_TOKEN_LIFETIME_MS = 10_000;
/** A token minted up to this far in our future (another instance's clock) is still good. */
export const CLOCK_SKEW_MS = 1000;

export class RetryTokens {
  readonly #key: Buffer;
  /** What the MAC covers, written in place: time, odcid, retry SCID, port, address. */
  readonly #input = Buffer.allocUnsafe(TIME_LENGTH + 2 * MAX_CID + 2 + MAX_ADDRESS);
  readonly lifetimeMs: number;

  /** `key`: shared with other instances (32 octets or more); default random. */
  constructor(lifetimeMs = RETRY_TOKEN_LIFETIME_MS, key?: Uint8Array) {
    this.lifetimeMs = lifetimeMs;
    this.#key = key === undefined ? randomBytes(32) : Buffer.from(key);
  }

  /** The MAC over `time` (8 bytes) and the rest; null when an ID or the address is too long. */
  #mac(
    time: Uint8Array,
    odcid: Uint8Array,
    retryScid: Uint8Array,
    address: string,
    port: number,
  ): Buffer | null {
    if (odcid.length > MAX_CID || retryScid.length > MAX_CID || address.length > MAX_ADDRESS) return null;
    const input = this.#input;
    input.set(time, 0);
    let at = TIME_LENGTH;
    input.set(odcid, at);
    at += odcid.length;
    input.set(retryScid, at);
    at += retryScid.length;
    input.writeUInt16BE(port, at);
    at += 2;
    at += input.write(address, at, 'latin1');
    return createHmac('sha256', this.#key).update(input.subarray(0, at)).digest();
  }

  /**
   * A token for a client at address:port whose first DCID was `odcid`, retried to `retryScid`;
   * `nowMs` on the wall clock (Date.now()).
   */
  mint(odcid: Uint8Array, retryScid: Uint8Array, address: string, port: number, nowMs = Date.now()): Buffer {
    const token = Buffer.allocUnsafe(2 + TIME_LENGTH + odcid.length + MAC_LENGTH);
    token[0] = MAGIC;
    token[1] = odcid.length;
    const time = token.subarray(2, 2 + TIME_LENGTH);
    time.writeUInt32BE(Math.floor(nowMs / 2 ** 32), 0);
    time.writeUInt32BE(Math.floor(nowMs) >>> 0, 4);
    token.set(odcid, 2 + TIME_LENGTH);
    const mac = this.#mac(time, odcid, retryScid, address, port);
    if (mac === null) throw new RangeError('connection ID or address too long for a Retry token');
    mac.copy(token, 2 + TIME_LENGTH + odcid.length, 0, MAC_LENGTH);
    return token;
  }

  /** Whether a token has the shape of ours (magic byte, lengths): one that does yet fails `verify` was altered or expired. */
  isOurs(token: Uint8Array): boolean {
    if (token.length < 2 + TIME_LENGTH + MAC_LENGTH || token[0] !== MAGIC) return false;
    const odcidLength = token[1]!;
    return odcidLength <= MAX_CID && token.length === 2 + TIME_LENGTH + odcidLength + MAC_LENGTH;
  }

  /**
   * The original DCID a valid token carries, or null (not ours, altered, another address,
   * another connection ID, or expired). The shape is checked before the MAC is computed.
   */
  verify(
    token: Uint8Array,
    retryScid: Uint8Array,
    address: string,
    port: number,
    nowMs = Date.now(),
  ): Uint8Array | null {
    if (!this.isOurs(token)) return null;
    const odcidLength = token[1]!;
    const bytes = Buffer.from(token.buffer, token.byteOffset, token.byteLength);
    const time = bytes.subarray(2, 2 + TIME_LENGTH);
    const odcid = bytes.subarray(2 + TIME_LENGTH, 2 + TIME_LENGTH + odcidLength);
    const mac = this.#mac(time, odcid, retryScid, address, port);
    if (
      mac === null ||
      !timingSafeEqual(bytes.subarray(2 + TIME_LENGTH + odcidLength), mac.subarray(0, MAC_LENGTH))
    )
      return null;
    const age = nowMs - (time.readUInt32BE(0) * 2 ** 32 + time.readUInt32BE(4));
    if (age < -CLOCK_SKEW_MS || age > this.lifetimeMs) return null;
    return Uint8Array.from(odcid);
  }
}
