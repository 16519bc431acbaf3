/**
 * The table of UDP flows of one listener, keyed by the peer's address and port, with a cap and
 * idle expiry. Sans-IO: the owner feeds it `(address, port)` pairs and calls `advance()` from
 * one periodic timer; nothing here touches a socket or a clock.
 *
 * Hot path (docs/ARCHITECTURE.md principle 5): `find()` is a hash over the address's characters, one
 * `Map.get` on a small integer and a string comparison; `touch()` writes one integer and, at most
 * once per tick per flow, moves the entry to the tail of an intrusive list. Nothing is allocated
 * per datagram.
 *
 * Hash flooding: peers choose their addresses and ports (spoofed sources cost an attacker
 * nothing), so the bucket key is a hash seeded at random per table, over the whole address and
 * the port, and no bucket ever holds more than `BUCKET_CAP` flows, which bounds every walk.
 */
import { randomInt } from 'node:crypto';

/** What the table needs of a flow: its peer, and the links it manages. */
export interface FlowEntry {
  readonly address: string;
  readonly port: number;
  /** The tick of the last datagram in or out. */
  lastSeen: number;
  /** Next entry in the same key bucket (peers sharing a key). */
  nextInBucket: FlowEntry | null;
  /** Neighbours in activity order, least recently active first. */
  older: FlowEntry | null;
  newer: FlowEntry | null;
}

/**
 * Flows one bucket holds at most. With a random seed and 30-bit keys, two of 10,000 peers share
 * a key with odds of about 1 in 20, and eight never do by chance: a full bucket means peers
 * were made to collide, and walks stay at most this long whatever they send.
 */
export const BUCKET_CAP = 8;

/**
 * The bucket key of a peer: FNV-1a over the address's UTF-16 code units and the port, from a
 * seeded state, then MurmurHash3's finalizer so every input bit reaches the low bits. Always a
 * small integer (below 2^30) so V8 keeps it unboxed; nothing is built or parsed. Not a keyed
 * PRF (SipHash would be): what an attacker could still make collide is bounded by `BUCKET_CAP`.
 */
export function flowKey(seed: number, address: string, port: number): number {
  let h = (0x811c9dc5 ^ seed) | 0;
  for (let i = 0; i < address.length; i++) h = Math.imul(h ^ address.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ port, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h & 0x3fffffff;
}

/**
 * Flows by peer. Activity order is a doubly linked list (least recently active at the head), kept
 * exact to the tick: `touch()` moves an entry only when its stamp changes. So expiry pops from the
 * head and the flow to evict at the cap is the head, both O(1) per flow.
 *
 * A bucket that already holds `BUCKET_CAP` flows takes no more (`canInsert` is false): the
 * newcomer is refused, and the flows in the table stay. Evicting one of them instead would let an
 * attacker who found colliding addresses push out a legitimate flow that shares their bucket;
 * re-seeding the whole table costs O(flows) each time and does nothing against collisions that
 * hold for every seed. A refused peer is one whose address collides with eight others under this
 * table's secret seed: by chance, never.
 */
const NONE: readonly never[] = Object.freeze([]);

export class FlowTable<F extends FlowEntry> {
  readonly #buckets = new Map<number, F>();
  readonly #seed: number;
  #size = 0;
  #probes = 0;
  #oldest: F | null = null;
  #newest: F | null = null;
  /** The coarse clock: advanced by the owner's periodic timer. */
  tick = 0;

  /** `seed`: the hash's seed, random by default (a fixed one is for tests and benchmarks only). */
  constructor(seed: number = randomInt(2 ** 32)) {
    this.#seed = seed | 0;
  }

  get size(): number {
    return this.#size;
  }

  /**
   * Entries `find()` has compared, over all its calls: one per lookup of a flow alone in its
   * bucket, so about one per datagram; far more would mean peers share buckets.
   */
  get probes(): number {
    return this.#probes;
  }

  /** The bucket key of a peer (overridden only by tests, to make peers collide). */
  protected keyOf(address: string, port: number): number {
    return flowKey(this.#seed, address, port);
  }

  /** The flow of a peer, or undefined. Compares at most `BUCKET_CAP` entries. */
  find(address: string, port: number): F | undefined {
    let entry = this.#buckets.get(this.keyOf(address, port));
    while (entry !== undefined) {
      this.#probes++;
      if (entry.port === port && entry.address === address) return entry;
      entry = (entry.nextInBucket ?? undefined) as F | undefined;
    }
    return undefined;
  }

  /** Whether a new flow of this peer has room in its bucket (see the class comment). */
  canInsert(address: string, port: number): boolean {
    let n = 0;
    for (
      let e: FlowEntry | null = this.#buckets.get(this.keyOf(address, port)) ?? null;
      e !== null;
      e = e.nextInBucket
    ) {
      if (++n >= BUCKET_CAP) return false;
    }
    return true;
  }

  /** Records activity now. */
  touch(entry: F): void {
    if (entry.lastSeen === this.tick) return;
    entry.lastSeen = this.tick;
    if (this.#newest === entry) return;
    this.#unlinkOrder(entry);
    this.#appendOrder(entry);
  }

  /**
   * Adds a flow (the caller has made room: see `idlest`); false, and nothing added, when its
   * bucket is full (see `canInsert`).
   */
  insert(entry: F): boolean {
    const key = this.keyOf(entry.address, entry.port);
    const head = this.#buckets.get(key);
    let n = 0;
    for (let e: FlowEntry | null = head ?? null; e !== null; e = e.nextInBucket) {
      if (++n >= BUCKET_CAP) return false;
    }
    entry.nextInBucket = head ?? null;
    this.#buckets.set(key, entry);
    entry.lastSeen = this.tick;
    this.#appendOrder(entry);
    this.#size++;
    return true;
  }

  /** Removes a flow; false if it was not in the table. */
  remove(entry: F): boolean {
    const key = this.keyOf(entry.address, entry.port);
    let current = this.#buckets.get(key);
    let previous: F | null = null;
    while (current !== undefined && current !== entry) {
      previous = current;
      current = (current.nextInBucket ?? undefined) as F | undefined;
    }
    if (current === undefined) return false;
    if (previous === null) {
      if (entry.nextInBucket === null) this.#buckets.delete(key);
      else this.#buckets.set(key, entry.nextInBucket as F);
    } else {
      previous.nextInBucket = entry.nextInBucket;
    }
    entry.nextInBucket = null;
    this.#unlinkOrder(entry);
    this.#size--;
    return true;
  }

  /** The least recently active flow (the one to evict at the cap), or null when empty. */
  idlest(): F | null {
    return this.#oldest;
  }

  /**
   * Advances the clock one tick and returns the flows idle for more than `idleTicks` ticks,
   * least recently active first (the caller closes and removes them).
   */
  advance(idleTicks: number): readonly F[] {
    this.tick++;
    let expired: F[] | null = null;
    if (idleTicks > 0) {
      for (let entry = this.#oldest; entry !== null; entry = entry.newer as F | null) {
        if (this.tick - entry.lastSeen <= idleTicks) break;
        if (expired === null) expired = [];
        expired.push(entry);
      }
    }
    // most ticks expire nothing: no array for them
    return expired ?? NONE;
  }

  /** Every flow, least recently active first (a snapshot). */
  entries(): F[] {
    const all: F[] = [];
    for (let entry = this.#oldest; entry !== null; entry = entry.newer as F | null) all.push(entry);
    return all;
  }

  #unlinkOrder(entry: F): void {
    const { older, newer } = entry;
    if (older === null) {
      if (this.#oldest === entry) this.#oldest = newer as F | null;
    } else older.newer = newer;
    if (newer === null) {
      if (this.#newest === entry) this.#newest = older as F | null;
    } else newer.older = older;
    entry.older = null;
    entry.newer = null;
  }

  #appendOrder(entry: F): void {
    entry.older = this.#newest;
    entry.newer = null;
    if (this.#newest === null) this.#oldest = entry;
    else this.#newest.newer = entry;
    this.#newest = entry;
  }
}
