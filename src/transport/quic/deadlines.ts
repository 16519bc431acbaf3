/**
 * The endpoint's timer queue: a binary min-heap of entries keyed by their deadline. Each entry
 * knows its place in the heap (`heapIndex`), so a deadline that changes moves the entry in
 * place in O(log n) and a retired entry leaves at once: the timer looks at the earliest
 * deadline only, never at every session.
 */

/** What the heap orders: a deadline (performance.now() ms) and the entry's slot, -1 when out. */
export interface DeadlineEntry {
  deadline: number;
  heapIndex: number;
}

export class DeadlineHeap<T extends DeadlineEntry> {
  readonly #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  /** The entry with the earliest deadline, if any. */
  peek(): T | undefined {
    return this.#items[0];
  }

  /** The earliest deadline, Infinity when empty. */
  get next(): number {
    const top = this.#items[0];
    return top === undefined ? Number.POSITIVE_INFINITY : top.deadline;
  }

  /** Gives `entry` this deadline: inserted, moved, or (for Infinity) removed. */
  set(entry: T, deadline: number): void {
    if (deadline === Number.POSITIVE_INFINITY) {
      this.remove(entry);
      entry.deadline = deadline;
      return;
    }
    const old = entry.deadline;
    entry.deadline = deadline;
    const items = this.#items;
    if (entry.heapIndex < 0 || items[entry.heapIndex] !== entry) {
      entry.heapIndex = items.length;
      items.push(entry);
      this.#up(entry.heapIndex);
    } else if (deadline < old) this.#up(entry.heapIndex);
    else if (deadline > old) this.#down(entry.heapIndex);
  }

  /** Takes `entry` out (nothing if it is not in). */
  remove(entry: T): void {
    const items = this.#items;
    const at = entry.heapIndex;
    if (at < 0 || items[at] !== entry) return;
    entry.heapIndex = -1;
    const last = items.pop()!;
    if (last === entry) return;
    items[at] = last;
    last.heapIndex = at;
    // the moved entry may belong above or below its new slot
    this.#up(at);
    this.#down(last.heapIndex);
  }

  /** Takes out and returns the earliest entry if its deadline is at or before `now`. */
  popDue(now: number): T | undefined {
    const top = this.#items[0];
    if (top === undefined || top.deadline > now) return undefined;
    this.remove(top);
    return top;
  }

  #up(at: number): void {
    const items = this.#items;
    const entry = items[at]!;
    while (at > 0) {
      const parentAt = (at - 1) >> 1;
      const parent = items[parentAt]!;
      if (parent.deadline <= entry.deadline) break;
      items[at] = parent;
      parent.heapIndex = at;
      at = parentAt;
    }
    items[at] = entry;
    entry.heapIndex = at;
  }

  #down(at: number): void {
    const items = this.#items;
    const n = items.length;
    const entry = items[at]!;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && items[right]!.deadline < items[left]!.deadline ? right : left;
      const smaller = items[child]!;
      if (smaller.deadline >= entry.deadline) break;
      items[at] = smaller;
      smaller.heapIndex = at;
      at = child;
    }
    items[at] = entry;
    entry.heapIndex = at;
  }
}
