/**
 * What a listener measures to stay cheap under an Initial flood. A garbage Initial costs its
 * sender nothing and us a key derivation and a failed decryption (about 45 µs in JavaScript),
 * so past a rate the listener answers from the header alone (a stateless Retry) and bounds
 * the decryptions it does per second. Both measures are O(1) per datagram, allocate nothing,
 * and take the time from the caller (performance.now() milliseconds).
 */

/**
 * Events per second over a sliding window: the count of the current window plus the part of
 * the previous window's count that still lies within one window of now (two counters, no
 * per-event memory).
 */
export class RateMeter {
  readonly #windowMs: number;
  #windowStart = Number.NEGATIVE_INFINITY;
  #count = 0;
  #previous = 0;

  constructor(windowMs = 100) {
    this.#windowMs = windowMs;
  }

  #roll(now: number): void {
    const elapsed = now - this.#windowStart;
    if (elapsed < this.#windowMs) return;
    // the window that just ended becomes the previous one; a longer silence leaves nothing
    this.#previous = elapsed < 2 * this.#windowMs ? this.#count : 0;
    this.#count = 0;
    this.#windowStart =
      this.#previous === 0 ? now : this.#windowStart + this.#windowMs * Math.floor(elapsed / this.#windowMs);
  }

  /** Counts one event at `now` and returns the rate, events per second. */
  hit(now: number): number {
    this.#roll(now);
    this.#count++;
    return this.#estimate(now);
  }

  /** The rate at `now`, events per second, without counting. */
  rate(now: number): number {
    this.#roll(now);
    return this.#estimate(now);
  }

  #estimate(now: number): number {
    const into = (now - this.#windowStart) / this.#windowMs;
    return ((this.#previous * (1 - into) + this.#count) * 1000) / this.#windowMs;
  }
}

/** At most `perSecond` takes per second on average, `capacity` at once after a quiet spell. */
export class TokenBucket {
  readonly perSecond: number;
  readonly capacity: number;
  #tokens: number;
  #at = Number.NEGATIVE_INFINITY;

  constructor(perSecond: number, capacity = perSecond) {
    this.perSecond = perSecond;
    this.capacity = Math.max(1, capacity);
    this.#tokens = this.capacity;
  }

  /** Takes a token if one is left at `now`. */
  take(now: number): boolean {
    if (this.perSecond === Number.POSITIVE_INFINITY) return true;
    if (now > this.#at) {
      const refill =
        this.#at === Number.NEGATIVE_INFINITY ? this.capacity : ((now - this.#at) * this.perSecond) / 1000;
      this.#tokens = Math.min(this.capacity, this.#tokens + refill);
      this.#at = now;
    }
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }
}
