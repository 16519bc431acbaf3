/**
 * The table of UDP flows of one listener, keyed by the peer's address and port, with a cap and
 * idle expiry. Sans-IO: the owner feeds it `(address, port)` pairs and calls `advance()` from
 * one periodic timer; nothing here touches a socket or a clock.
 *
 * Hot path (DESIGN.md principle 5): `find()` is one `Map.get` on a small integer and a string
 * comparison; `touch()` writes one integer and, at most once per tick per flow, moves the entry
 * to the tail of an intrusive list. Nothing is allocated per datagram.
 */

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
 * The bucket key of a peer: the port and a few bits of the address's last characters, always a
 * small integer (below 2^30) so V8 keeps it unboxed; peers sharing a key are told apart by
 * comparing the address strings Node gives us. No string is built and nothing is parsed.
 */
export function flowKey(address: string, port: number): number {
  const n = address.length;
  const tail = address.charCodeAt(n - 1) + 31 * address.charCodeAt(n - 2) + 961 * address.charCodeAt(n - 3);
  return (tail & 0x3fff) * 65536 + port;
}

/**
 * Flows by peer. Activity order is a doubly linked list (least recently active at the head), kept
 * exact to the tick: `touch()` moves an entry only when its stamp changes. So expiry pops from the
 * head and the flow to evict at the cap is the head, both O(1) per flow.
 */
const NONE: readonly never[] = Object.freeze([]);

export class FlowTable<F extends FlowEntry> {
  readonly #buckets = new Map<number, F>();
  #size = 0;
  #oldest: F | null = null;
  #newest: F | null = null;
  /** The coarse clock: advanced by the owner's periodic timer. */
  tick = 0;

  get size(): number {
    return this.#size;
  }

  /** The flow of a peer, or undefined. */
  find(address: string, port: number): F | undefined {
    let entry = this.#buckets.get(flowKey(address, port));
    while (entry !== undefined && (entry.port !== port || entry.address !== address)) {
      entry = (entry.nextInBucket ?? undefined) as F | undefined;
    }
    return entry;
  }

  /** Records activity now. */
  touch(entry: F): void {
    if (entry.lastSeen === this.tick) return;
    entry.lastSeen = this.tick;
    if (this.#newest === entry) return;
    this.#unlinkOrder(entry);
    this.#appendOrder(entry);
  }

  /** Adds a flow (the caller has made room: see `idlest`). */
  insert(entry: F): void {
    const key = flowKey(entry.address, entry.port);
    entry.nextInBucket = this.#buckets.get(key) ?? null;
    this.#buckets.set(key, entry);
    entry.lastSeen = this.tick;
    this.#appendOrder(entry);
    this.#size++;
  }

  /** Removes a flow; false if it was not in the table. */
  remove(entry: F): boolean {
    const key = flowKey(entry.address, entry.port);
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
