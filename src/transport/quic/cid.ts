/**
 * Connection IDs: the ones we issue have a fixed length, so a short header (which does not
 * carry the length) can be routed; a table finds the session of a datagram's DCID without
 * allocating (DESIGN.md principles 4 and 5).
 */
import { randomBytes, randomInt } from 'node:crypto';

/** Length of every connection ID this endpoint issues. */
export const CID_LENGTH = 16;

// random bytes drawn in blocks: one CSPRNG call per 256 connection IDs, not one each
const POOL_SIZE = 4096;
let pool = randomBytes(POOL_SIZE);
let poolUsed = 0;

function take(n: number): Buffer {
  if (poolUsed + n > POOL_SIZE) {
    pool = randomBytes(POOL_SIZE);
    poolUsed = 0;
  }
  const out = Buffer.from(pool.subarray(poolUsed, poolUsed + n));
  // used bytes are wiped, so no copy of them stays in the pool
  pool.fill(0, poolUsed, poolUsed + n);
  poolUsed += n;
  return out;
}

/** A fresh random connection ID of CID_LENGTH bytes. */
export function newCid(): Buffer {
  return take(CID_LENGTH);
}

/**
 * Makes the connection IDs a server issues. Random by default; an encoding a load balancer
 * decodes (QUIC-LB) puts a server ID in each. Every ID has the same length, so a short header
 * (which does not carry the length) can be routed.
 */
export interface CidGenerator {
  /** Length in bytes of every ID it makes (1 to 20). */
  readonly length: number;
  /**
   * Offset in each ID of 4 bytes that change from one ID to the next (random to an observer):
   * workers behind SO_REUSEPORT can be steered on them.
   */
  readonly steeringOffset: number;
  /** A new ID (the caller keeps it). */
  next(): Buffer;
  /**
   * Whether sessions may issue spare IDs (NEW_CONNECTION_ID) from it beside their first;
   * default true. A wrapper of a generator should pass this on.
   */
  readonly issueSpares?: boolean;
  /**
   * Whether sessions must tell clients not to migrate (the `disable_active_migration`
   * transport parameter): its IDs carry no route for a balancer. Default false. A wrapper
   * should pass this on.
   */
  readonly disableActiveMigration?: boolean;
}

/** Random IDs of CID_LENGTH bytes: what a listener issues unless told otherwise. */
export const RANDOM_CIDS: CidGenerator = Object.freeze({
  length: CID_LENGTH,
  steeringOffset: 0,
  next: newCid,
});

/** A stateless reset token for a new connection ID (128 bits, as quiche takes it). */
export function newResetToken(): bigint {
  const bytes = take(16);
  return (bytes.readBigUInt64BE(0) << 64n) | bytes.readBigUInt64BE(8);
}

interface Entry<T> {
  readonly cid: Uint8Array;
  readonly owner: T;
  next: Entry<T> | null;
}

/**
 * Connection ID → owner. Lookups take the ID where it lies in the datagram (no copy, no
 * string key): a seeded hash picks a bucket, then bytes are compared. The seed is random per
 * table so a peer cannot aim IDs at one bucket.
 */
export class CidTable<T> {
  readonly #buckets = new Map<number, Entry<T>>();
  readonly #seed = randomInt(0x7fffffff);
  #size = 0;

  get size(): number {
    return this.#size;
  }

  #hash(bytes: Uint8Array, offset: number, length: number): number {
    let h = (0x811c9dc5 ^ this.#seed) >>> 0;
    for (let i = 0; i < length; i++) {
      h ^= bytes[offset + i]!;
      h = Math.imul(h, 0x01000193);
    }
    h ^= h >>> 15;
    // a small integer, so the Map key is never a heap number
    return (h ^ length) & 0x3fffffff;
  }

  /** The owner of the ID at `bytes[offset, offset + length)`, if any. */
  get(bytes: Uint8Array, offset = 0, length = bytes.length - offset): T | undefined {
    let e = this.#buckets.get(this.#hash(bytes, offset, length)) ?? null;
    for (; e !== null; e = e.next) {
      const cid = e.cid;
      if (cid.length !== length) continue;
      let i = 0;
      while (i < length && cid[i] === bytes[offset + i]) i++;
      if (i === length) return e.owner;
    }
    return undefined;
  }

  /** Adds an ID (copied); false if it is already there. */
  add(cid: Uint8Array, owner: T): boolean {
    if (this.get(cid) !== undefined) return false;
    const h = this.#hash(cid, 0, cid.length);
    this.#buckets.set(h, { cid: Uint8Array.from(cid), owner, next: this.#buckets.get(h) ?? null });
    this.#size++;
    return true;
  }

  /** Removes an ID; false if it was not there. */
  delete(cid: Uint8Array): boolean {
    const h = this.#hash(cid, 0, cid.length);
    let prev: Entry<T> | null = null;
    for (let e = this.#buckets.get(h) ?? null; e !== null; prev = e, e = e.next) {
      if (e.cid.length !== cid.length || !e.cid.every((b, i) => b === cid[i])) continue;
      if (prev) prev.next = e.next;
      else if (e.next) this.#buckets.set(h, e.next);
      else this.#buckets.delete(h);
      this.#size--;
      return true;
    }
    return false;
  }
}

/**
 * Where the DCID of a datagram's first packet lies, without parsing further: long headers
 * carry its length, short headers use ours (`shortLength`, the length of the IDs we issue). Returns the DCID length and writes nothing; -1
 * when the datagram is too short to hold one.
 */
export function dcidLength(datagram: Uint8Array, shortLength = CID_LENGTH): number {
  const n = datagram.length;
  if (n < 1) return -1;
  if ((datagram[0]! & 0x80) === 0) return n >= 1 + shortLength ? shortLength : -1;
  if (n < 6) return -1;
  const length = datagram[5]!;
  return n >= 6 + length ? length : -1;
}

/** Offset of the DCID: 6 in a long header, 1 in a short one. */
export function dcidOffset(datagram: Uint8Array): number {
  return (datagram[0]! & 0x80) === 0 ? 1 : 6;
}
