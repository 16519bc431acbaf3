/**
 * A `Map` with a capacity: past it, the least recently used entry goes. One implementation for
 * every bounded cache in wirelayer (certificates, TLS/DTLS/QUIC contexts, QUIC Initial keys,
 * reassembly buffers), so they all evict the same way and count it the same way.
 *
 * Recency is the `Map`'s own insertion order: a hit moves the key to the end (delete + set),
 * so the first key is always the least recently used and eviction is O(1).
 */
export class LruMap<K, V> {
  readonly #entries = new Map<K, V>();
  readonly #onEvict: ((key: K, value: V) => void) | undefined;
  /** Entries pushed out by the capacity since this map was made. */
  evictions = 0;

  /**
   * @param capacity most entries kept (at least 1)
   * @param onEvict called with each entry the capacity pushes out (not on `delete` or `clear`)
   */
  constructor(
    readonly capacity: number,
    onEvict?: (key: K, value: V) => void,
  ) {
    if (!(capacity >= 1)) throw new RangeError(`LruMap capacity must be at least 1, got ${capacity}`);
    this.#onEvict = onEvict;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value of `key`, now the most recently used; undefined if absent. */
  get(key: K): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  /** The value of `key` without changing its recency. */
  peek(key: K): V | undefined {
    return this.#entries.get(key);
  }

  has(key: K): boolean {
    return this.#entries.has(key);
  }

  /** Sets `key` as the most recently used, evicting the least recently used past the capacity. */
  set(key: K, value: V): this {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.capacity) this.evictOldest();
    return this;
  }

  /** The value of `key`, made by `make` (and kept) when absent. */
  getOrSet(key: K, make: () => V): V {
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    const value = make();
    this.set(key, value);
    return value;
  }

  /** Removes the least recently used entry (counted as an eviction); returns its key. */
  evictOldest(): K | undefined {
    const oldest = this.#entries.entries().next();
    if (oldest.done) return undefined;
    const [key, value] = oldest.value;
    this.#entries.delete(key);
    this.evictions++;
    this.#onEvict?.(key, value);
    return key;
  }

  delete(key: K): boolean {
    return this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  /** Entries, least recently used first. */
  entries(): IterableIterator<[K, V]> {
    return this.#entries.entries();
  }

  values(): IterableIterator<V> {
    return this.#entries.values();
  }
}
