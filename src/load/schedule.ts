/**
 * When messages are due. Open loop: message i is due at `start + i / rate`, whatever the
 * replies do, and its latency is measured from that time, so a server that stalls is charged
 * for every message it held up (no coordinated omission). Sans-IO: the caller brings the clock
 * (performance.now() milliseconds) and its own timer.
 */
export class OpenLoopSchedule {
  #taken = 0;
  readonly #periodMs: number;

  /**
   * @param start when message 0 is due (ms)
   * @param rate messages per second
   * @param limit messages in all (Infinity for a run bounded by time)
   */
  constructor(
    readonly start: number,
    readonly rate: number,
    readonly limit: number = Number.POSITIVE_INFINITY,
  ) {
    this.#periodMs = 1000 / rate;
  }

  /** Messages taken so far (the index of the next one). */
  get taken(): number {
    return this.#taken;
  }

  /** Whether every message of a counted run is taken. */
  get done(): boolean {
    return this.#taken >= this.limit;
  }

  /** When message `i` is due (ms). */
  timeOf(i: number): number {
    return this.start + i * this.#periodMs;
  }

  /** Messages due by `now` and not yet taken. */
  due(now: number): number {
    if (now < this.start) return 0;
    const byNow = Math.min(this.limit, Math.floor((now - this.start) / this.#periodMs) + 1);
    return Math.max(0, byNow - this.#taken);
  }

  /** Whether the next message is due by `time` (and not all are taken). */
  dueBy(time: number): boolean {
    return this.#taken < this.limit && this.timeOf(this.#taken) <= time;
  }

  /** Takes the next message: returns its scheduled time. */
  take(): number {
    return this.timeOf(this.#taken++);
  }

  /** Milliseconds from `now` until the next message is due (0: one is due; Infinity: none left). */
  delay(now: number): number {
    if (this.done) return Number.POSITIVE_INFINITY;
    return Math.max(0, this.timeOf(this.#taken) - now);
  }
}
