/**
 * Bookkeeping of messages in flight, sans-IO: the caller brings the clock (ms).
 *
 * - `TimeQueue`: the send times of stream messages, oldest first (a stream keeps order, so the
 *   next `size` bytes back answer the oldest message).
 * - `ReplyTracker`: datagrams by sequence number, which can be lost, late, duplicated or
 *   unknown. A ring of typed arrays, nothing allocated per datagram.
 */

const EMPTY = 0;
const OUTSTANDING = 1;
const ANSWERED = 2;
const EXPIRED = 3;

/** `ReplyTracker.reply` for an answer that came after its datagram was counted lost. */
export const REPLY_LATE = -1;
/** `ReplyTracker.reply` for a second answer to the same datagram. */
export const REPLY_DUPLICATE = -2;
/** `ReplyTracker.reply` for an answer to no datagram we sent (or whose header does not match). */
export const REPLY_UNMATCHED = -3;

const TWO_32 = 2 ** 32;

/** Send times of datagrams in flight, by sequence number, and what became of each. */
export class ReplyTracker {
  readonly #times: Float64Array;
  readonly #seqs: Float64Array;
  readonly #state: Uint8Array;
  readonly #mask: number;
  #next = 0;
  #oldest = 0;
  #outstanding = 0;
  #lost = 0;

  /**
   * @param capacity datagrams tracked at once, rounded up to a power of two; a datagram still
   *   unanswered when its slot is needed again counts as lost
   * @param timeoutMs a datagram unanswered this long is lost
   */
  constructor(
    capacity: number,
    readonly timeoutMs: number,
  ) {
    let size = 16;
    while (size < capacity) size *= 2;
    this.#times = new Float64Array(size);
    this.#seqs = new Float64Array(size).fill(-1);
    this.#state = new Uint8Array(size);
    this.#mask = size - 1;
  }

  /** Datagrams sent and neither answered nor lost yet. */
  get outstanding(): number {
    return this.#outstanding;
  }

  /** Registers the next datagram, sent (or due) at `time`: returns its sequence number. */
  next(time: number): number {
    const seq = this.#next++;
    const slot = seq & this.#mask;
    if (this.#state[slot] === OUTSTANDING) {
      // the ring is full: the oldest unanswered datagram is given up for lost
      this.#outstanding--;
      this.#lost++;
    }
    this.#seqs[slot] = seq;
    this.#times[slot] = time;
    this.#state[slot] = OUTSTANDING;
    this.#outstanding++;
    return seq;
  }

  /** The full sequence number whose low 32 bits (as the wire carries it) are `wire`, or -1. */
  #unwrap(wire: number): number {
    if (this.#next === 0) return -1;
    const last = this.#next - 1;
    const back = ((last % TWO_32) - wire + TWO_32) % TWO_32;
    return last - back;
  }

  /**
   * An answer carrying `wire` (the sequence number's low 32 bits) and `time` (the send time
   * echoed): returns its latency in ms, or REPLY_LATE, REPLY_DUPLICATE, REPLY_UNMATCHED.
   */
  reply(wire: number, time: number, now: number): number {
    if (wire < 0) return REPLY_UNMATCHED;
    const seq = this.#unwrap(wire);
    if (seq < 0) return REPLY_UNMATCHED;
    const slot = seq & this.#mask;
    if (this.#seqs[slot] !== seq) return seq < this.#next - this.#mask - 1 ? REPLY_LATE : REPLY_UNMATCHED;
    if (this.#times[slot] !== time) return REPLY_UNMATCHED;
    const state = this.#state[slot];
    if (state === ANSWERED) return REPLY_DUPLICATE;
    if (state === EXPIRED) return REPLY_LATE;
    this.#state[slot] = ANSWERED;
    this.#outstanding--;
    return now - time;
  }

  /**
   * Counts every datagram sent `timeoutMs` or more before `now` and still unanswered as lost;
   * returns how many were lost since the last call (those given up for lack of room included).
   */
  expire(now: number): number {
    const deadline = now - this.timeoutMs;
    while (this.#oldest < this.#next) {
      const slot = this.#oldest & this.#mask;
      if (this.#seqs[slot] === this.#oldest && this.#state[slot] === OUTSTANDING) {
        // send times only grow with the sequence number: the first one in time ends the walk
        if (this.#times[slot] > deadline) break;
        this.#state[slot] = EXPIRED;
        this.#outstanding--;
        this.#lost++;
      }
      this.#oldest++;
    }
    const lost = this.#lost;
    this.#lost = 0;
    return lost;
  }

  /** Every datagram still unanswered is lost: returns how many were lost since the last call. */
  expireAll(): number {
    return this.expire(Number.POSITIVE_INFINITY);
  }

  /** Forgets everything (the slots are reused by a new session). */
  clear(): void {
    this.#state.fill(EMPTY);
    this.#seqs.fill(-1);
    this.#next = 0;
    this.#oldest = 0;
    this.#outstanding = 0;
    this.#lost = 0;
  }
}

/** A growable ring of numbers, first in first out: the send times of stream messages in flight. */
export class TimeQueue {
  #ring = new Float64Array(64);
  #head = 0;
  #size = 0;

  get length(): number {
    return this.#size;
  }

  push(time: number): void {
    if (this.#size === this.#ring.length) this.#grow();
    this.#ring[(this.#head + this.#size) & (this.#ring.length - 1)] = time;
    this.#size++;
  }

  /** The oldest time, removed (NaN when empty). */
  shift(): number {
    if (this.#size === 0) return Number.NaN;
    const time = this.#ring[this.#head]!;
    this.#head = (this.#head + 1) & (this.#ring.length - 1);
    this.#size--;
    return time;
  }

  /** The time `i` places from the oldest (NaN past the end). */
  at(i: number): number {
    return i < this.#size ? this.#ring[(this.#head + i) & (this.#ring.length - 1)]! : Number.NaN;
  }

  clear(): void {
    this.#head = 0;
    this.#size = 0;
  }

  #grow(): void {
    const bigger = new Float64Array(this.#ring.length * 2);
    for (let i = 0; i < this.#size; i++) bigger[i] = this.#ring[(this.#head + i) & (this.#ring.length - 1)]!;
    this.#ring = bigger;
    this.#head = 0;
  }
}
