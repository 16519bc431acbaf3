/**
 * A bounded FIFO that is also an async iterable: producers `push` (dropping, and counting,
 * when full, as a kernel socket buffer does), one consumer iterates. `end()` finishes the
 * iteration once the queue drains.
 */
export class BoundedQueue<T> implements AsyncIterable<T> {
  #items: (T | undefined)[];
  #head = 0;
  #size = 0;
  #ended = false;
  #waiting: ((r: IteratorResult<T>) => void) | null = null;
  /** Items refused because the queue was full. */
  dropped = 0;

  constructor(readonly capacity: number) {
    this.#items = new Array<T | undefined>(Math.min(capacity, 64));
  }

  get size(): number {
    return this.#size;
  }

  /** True once `end()` was called (or an iteration returned): pushes are refused. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Adds an item; false (and counted in `dropped`) if full or ended. */
  push(item: T): boolean {
    if (this.#ended) return false;
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = null;
      waiting({ value: item, done: false });
      return true;
    }
    if (this.#size >= this.capacity) {
      this.dropped++;
      return false;
    }
    if (this.#size === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#size) % this.#items.length] = item;
    this.#size++;
    return true;
  }

  /** No more items; the iteration ends after the queued ones. */
  end(): void {
    this.#ended = true;
    const waiting = this.#waiting;
    if (waiting && this.#size === 0) {
      this.#waiting = null;
      waiting({ value: undefined, done: true });
    }
  }

  /** Takes the next item if one is queued. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#size--;
    return item;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#size > 0) return Promise.resolve({ value: this.shift() as T, done: false });
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiting) return Promise.reject(new Error('BoundedQueue has one consumer'));
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: () => {
        this.end();
        while (this.#size > 0) this.shift();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  #grow(): void {
    const bigger = new Array<T | undefined>(Math.min(this.capacity, this.#items.length * 2));
    for (let i = 0; i < this.#size; i++) bigger[i] = this.#items[(this.#head + i) % this.#items.length];
    this.#items = bigger;
    this.#head = 0;
  }
}
