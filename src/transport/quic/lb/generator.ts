/**
 * QUIC-LB connection IDs as a listener's `CidGenerator`. IDs are made a batch at a time (one
 * CSPRNG call or one AES call per round for the batch) and handed out one by one, so the cost
 * per ID is a copy. Nonces: random without a key (the draft forbids any observable relation
 * between plaintext nonces); with a key, a counter from a random start, which cannot repeat
 * until it wraps; a counter that would wrap (nonces of 6 octets or less) moves to unroutable
 * IDs of the same length, as the draft requires of a server out of nonces.
 */
import { randomFillSync } from 'node:crypto';
import type { CidGenerator } from '../cid.js';
import {
  type QuicLbConfig,
  type QuicLbEncoding,
  type ResolvedQuicLbConfig,
  resolveQuicLbConfig,
} from './config.js';
import { QuicLbEncoder } from './encoder.js';

/** IDs made per batch. */
const BATCH = 32;
/** Counters this long never wrap in practice: 2^56 IDs. */
const UNBOUNDED_NONCE = 7;

/** A `CidGenerator` of QUIC-LB IDs (see `quicLbCids`). */
export interface QuicLbCids extends CidGenerator {
  readonly encoding: QuicLbEncoding;
  /** 0..6, or 7 for unroutable IDs. */
  readonly configId: number;
  /** This server's ID (empty for unroutable IDs). */
  readonly serverId: Buffer;
}

class QuicLbCidGenerator implements QuicLbCids {
  readonly length: number;
  readonly steeringOffset: number;
  readonly issueSpares: boolean;
  readonly disableActiveMigration: boolean;
  readonly encoding: QuicLbEncoding;
  readonly configId: number;
  readonly #config: ResolvedQuicLbConfig;
  readonly #plainLength: number;
  #encoder: QuicLbEncoder;
  readonly #plain: Buffer;
  readonly #out: Buffer;
  #filled = 0;
  #taken = 0;
  /** The nonce counter (big-endian), keyed encodings only. */
  readonly #nonce: Buffer;
  /** Nonces left before the counter comes back to its start. */
  #noncesLeft: number;

  constructor(config: ResolvedQuicLbConfig) {
    this.#config = config;
    this.encoding = config.encoding;
    this.configId = config.configId;
    this.length = config.cidLength;
    this.#plainLength = config.cidLength - 1;
    // 4 octets that change per ID: the random nonce in plaintext, the ciphertext otherwise
    this.steeringOffset = config.encoding === 'plaintext' ? 1 + config.serverId.length : 1;
    // the draft: no NEW_CONNECTION_ID with unencrypted server IDs (they would suggest an
    // unlinkability they lack) nor with unroutable ones (one ID per connection, no migration)
    this.issueSpares = config.encoding === 'single-pass' || config.encoding === 'four-pass';
    this.disableActiveMigration = config.encoding === 'unroutable';
    this.#encoder = new QuicLbEncoder(config, BATCH);
    this.#plain = Buffer.alloc(BATCH * this.#plainLength);
    this.#out = Buffer.alloc(BATCH * this.length);
    this.#nonce = Buffer.alloc(config.nonceLength);
    randomFillSync(this.#nonce);
    this.#noncesLeft =
      config.nonceLength >= UNBOUNDED_NONCE ? Number.POSITIVE_INFINITY : 2 ** (8 * config.nonceLength);
  }

  get serverId(): Buffer {
    return Buffer.from(this.#config.serverId);
  }

  next(): Buffer {
    if (this.#taken === this.#filled) this.#fill();
    const length = this.length;
    const start = this.#taken * length;
    const id = Buffer.allocUnsafe(length);
    this.#out.copy(id, 0, start, start + length);
    // no copy of a handed-out ID stays behind
    this.#out.fill(0, start, start + length);
    this.#taken++;
    return id;
  }

  #fill(): void {
    if (this.#encoder.config.key !== null && this.#noncesLeft < BATCH) this.#exhausted();
    const config = this.#encoder.config;
    const plain = this.#plain;
    const length = this.#plainLength;
    if (config.key === null) {
      randomFillSync(plain);
      for (let i = 0; i < BATCH; i++) config.serverId.copy(plain, i * length);
    } else {
      const sidLength = config.serverId.length;
      const nonce = this.#nonce;
      for (let i = 0; i < BATCH; i++) {
        config.serverId.copy(plain, i * length);
        nonce.copy(plain, i * length + sidLength);
        for (let j = nonce.length - 1; j >= 0 && ++nonce[j]! === 256; j--) nonce[j] = 0;
      }
      this.#noncesLeft -= BATCH;
    }
    this.#encoder.encode(plain, BATCH, this.#out);
    plain.fill(0);
    this.#filled = BATCH;
    this.#taken = 0;
  }

  /** The next batch would reuse a nonce: unroutable IDs from now on. */
  #exhausted(): void {
    this.#encoder = new QuicLbEncoder(resolveQuicLbConfig({ unroutable: true, length: this.length }), BATCH);
  }
}

/**
 * A `CidGenerator` of QUIC-LB connection IDs (draft-ietf-quic-load-balancers) for a listener's
 * `cids` option: a balancer holding the same configuration routes every ID to this server,
 * whatever the client's address. The encoding follows from the configuration: no key, the
 * server ID in clear (`plaintext`); a key and server ID + nonce = 16 octets, one AES-128-ECB
 * block (`single-pass`); a key otherwise, a four-round Feistel network (`four-pass`); or
 * `{ unroutable: true }`, random IDs whose first octet is `0b111xxxxx` (4-tuple routing).
 * The first octet's low 5 bits always give the length of the rest. Plaintext and unroutable
 * IDs are issued only in the handshake (no spare IDs), and unroutable ones come with
 * `disable_active_migration`, as the draft asks.
 *
 * @throws QuicLbConfigError when the configuration does not hold together.
 */
export function quicLbCids(config: QuicLbConfig): QuicLbCids {
  return new QuicLbCidGenerator(resolveQuicLbConfig(config));
}

/**
 * One QUIC-LB connection ID for a given nonce (test vectors, tools): the same bytes the
 * generator would make with that nonce. Unroutable configurations take the random bytes as
 * the nonce.
 */
export function encodeQuicLbCid(config: QuicLbConfig, nonce: Uint8Array): Buffer {
  const resolved = resolveQuicLbConfig(config);
  if (nonce.length !== resolved.nonceLength)
    throw new RangeError(`nonce must be ${resolved.nonceLength} octets, not ${nonce.length}`);
  const plain = Buffer.concat([resolved.serverId, nonce]);
  const out = Buffer.alloc(resolved.cidLength);
  new QuicLbEncoder(resolved, 1).encode(plain, 1, out);
  return out;
}
