/**
 * Impairment of a byte stream (TCP, TLS plaintext between the legs): a stream cannot lose,
 * reorder or duplicate a byte, so it gets what a link does to its timing: delay and jitter
 * (order kept), a rate, and blackholes (bytes wait for the link to come back, as TCP's
 * retransmissions would make them). Chunks wait in a bounded queue; a full queue stops taking
 * more (backpressure), never drops.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { ImpairCounters, LinkClock } from './impairer.js';
import type { SeededRandom } from './random.js';
import type { DirectionFaults } from './spec.js';

/** Chunks are paced in pieces this large at most, so a slow rate does not release 64 KiB at once. */
const MAX_PIECE = 16 * 1024;

/** One direction of the stream link, shared by every flow of the proxy (one link, as the datagrams'). */
export class StreamLink {
  /** The rate's pacing: when the link is free to carry the next byte. */
  #free = 0;

  constructor(
    readonly faults: DirectionFaults,
    readonly random: SeededRandom,
    readonly clock: LinkClock,
    readonly counters: ImpairCounters,
  ) {}

  /** When a chunk of `bytes` that arrived at `now` may leave, given the one before left at `after`. */
  departure(now: number, bytes: number, after: number): number {
    const f = this.faults;
    let at = now;
    if (f.delay > 0 || f.jitter > 0) {
      const spread = f.jitter > 0 ? (this.random.next() * 2 - 1) * f.jitter : 0;
      at += Math.max(0, f.delay + spread);
    }
    // bytes keep their order whatever the jitter drew
    at = Math.max(at, after);
    if (f.rate === 0) return f.blackhole === null ? at : this.clock.passesAt(at, f.blackhole);
    // a piece goes on the link once it is free, and only while the link is up
    let start = Math.max(at, this.#free);
    if (f.blackhole !== null) start = this.clock.passesAt(start, f.blackhole);
    this.#free = start + (bytes * 8 * 1000) / f.rate;
    return this.#free;
  }
}

interface Held {
  chunk: Buffer;
  at: number;
}

/** A Transform between the relay and one leg's writable side, for one flow and direction. */
export class StreamShaper extends Transform {
  readonly #link: StreamLink;
  readonly #queue: Held[] = [];
  #last = 0;
  #timer: NodeJS.Timeout | null = null;
  /** The write callback held back while the queue is full. */
  #blocked: TransformCallback | null = null;
  #flushed: TransformCallback | null = null;

  constructor(link: StreamLink) {
    super();
    this.#link = link;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const now = performance.now();
    for (let offset = 0; offset < chunk.length; offset += MAX_PIECE) {
      const piece = chunk.length <= MAX_PIECE ? chunk : chunk.subarray(offset, offset + MAX_PIECE);
      const at = this.#link.departure(now, piece.length, this.#last);
      this.#last = at;
      if (at <= now && this.#queue.length === 0) {
        this.push(piece);
        continue;
      }
      this.#link.counters.delayed++;
      this.#queue.push({ chunk: piece, at });
    }
    if (this.#queue.length === 0) {
      callback();
      return;
    }
    this.#arm();
    if (this.#queue.length < this.#link.faults.queue) callback();
    else this.#blocked = callback;
  }

  override _flush(callback: TransformCallback): void {
    if (this.#queue.length === 0) callback();
    else this.#flushed = callback;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#queue.length = 0;
    callback(error);
  }

  #arm(): void {
    if (this.#timer !== null || this.#queue.length === 0) return;
    const wait = Math.max(0, Math.ceil(this.#queue[0]!.at - performance.now()));
    this.#timer = setTimeout(this.#release, wait);
  }

  readonly #release = (): void => {
    this.#timer = null;
    const now = performance.now() + 0.5;
    const queue = this.#queue;
    let n = 0;
    while (n < queue.length && queue[n]!.at <= now) this.push(queue[n++]!.chunk);
    queue.splice(0, n);
    if (this.#blocked !== null && queue.length < this.#link.faults.queue) {
      const callback = this.#blocked;
      this.#blocked = null;
      callback();
    }
    if (queue.length > 0) this.#arm();
    else if (this.#flushed !== null) {
      const callback = this.#flushed;
      this.#flushed = null;
      callback();
    }
  };
}
