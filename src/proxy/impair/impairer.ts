/**
 * One direction of an impaired datagram link: every datagram goes through the drop decisions
 * (blackhole, MTU, drop list, loss bursts), may be corrupted and duplicated, may be held back
 * for reordering, then waits out its delay and the token bucket before it reaches the wire.
 * Random decisions come from the direction's own seeded PRNG, drawn in a fixed order per
 * datagram, so a seed replays the same decisions for the same sequence of datagrams.
 */

import type { SeededRandom } from './random.js';
import type { DirectionFaults } from './spec.js';

/** What the impairer did to one direction's datagrams (stream chunks: `delayed` only). */
export interface ImpairCounters {
  /** Lost: loss, drop list, MTU, blackhole, a full rate queue. */
  dropped: number;
  /** Sent after at least one datagram that came after them. */
  reordered: number;
  /** Sent twice. */
  duplicated: number;
  /** One byte changed. */
  corrupted: number;
  /** Held back by the delay, jitter, token bucket or blackhole (stream chunks). */
  delayed: number;
  /** Source changes toward the server (NAT rebinding). */
  rebound: number;
}

/** Zeroed counters. */
export function zeroCounters(): ImpairCounters {
  return { dropped: 0, reordered: 0, duplicated: 0, corrupted: 0, delayed: 0, rebound: 0 };
}

/** Where a datagram finally goes: the socket's own send, to the destination its caller gave. */
export interface Wire {
  send(datagram: Uint8Array, port: number | undefined, address: string | undefined): void;
}

/**
 * The blackhole's clock, shared by both directions of an impairment (and its stream flows):
 * its cycle starts with the first datagram or chunk either way.
 */
export class LinkClock {
  #origin = -1;

  /** Ms since the link first carried something (starting it now if it has not). */
  elapsed(now: number): number {
    if (this.#origin < 0) this.#origin = now;
    return now - this.#origin;
  }

  /** When a blackhole lets traffic through again: `now` itself if it is not in an OFF period. */
  passesAt(now: number, hole: { onMs: number; offMs: number }): number {
    const period = hole.onMs + hole.offMs;
    const phase = this.elapsed(now) % period;
    return phase < hole.onMs ? now : now + (period - phase);
  }
}

/** QUIC Version Negotiation (RFC 8999): a long header with version 0. The simulator never corrupts it. */
export function isVersionNegotiation(d: Uint8Array): boolean {
  return d.length >= 5 && (d[0]! & 0x80) !== 0 && d[1] === 0 && d[2] === 0 && d[3] === 0 && d[4] === 0;
}

/** Bytes of a datagram's start a corruption may hit (quic-network-simulator's). */
const CORRUPT_SPAN = 50;
/** A reordered datagram goes anyway after this long without enough later ones to overtake it. */
const MIN_REORDER_HOLD_MS = 20;
/** The token bucket holds this long's worth of bits, and at least two full-size datagrams. */
const BUCKET_MS = 5;
const MIN_BUCKET_BITS = 2 * 1500 * 8;

/** A datagram on its way through the stages. */
interface Pending {
  datagram: Uint8Array;
  port: number | undefined;
  address: string | undefined;
  wire: Wire;
  /** Delay stage: when it leaves. Reorder stage: when it goes even if not overtaken. */
  at: number;
  /** Reorder stage: later datagrams still to overtake it. */
  countdown: number;
  overtaken: boolean;
  /** Counted as delayed already. */
  delayed: boolean;
}

/** One direction: `push` takes every datagram the socket is asked to send. */
export class DatagramImpairer {
  /** Datagrams seen (the drop list's index of the last one). */
  #index = 0;
  readonly #f: DirectionFaults;
  readonly #random: SeededRandom;
  readonly #clock: LinkClock;
  readonly #drops: ReadonlySet<number>;
  readonly #shapes: boolean;
  #burstLeft = 0;
  /** Datagrams lost in a row so far. */
  #lostInARow = 0;
  /** Held for reordering, in arrival order. */
  #held: Pending[] = [];
  /** The delay stage, ordered by `at`. */
  #delayed: Pending[] = [];
  /** The token bucket's queue. */
  #queued: Pending[] = [];
  #tokens: number;
  readonly #bucketBits: number;
  #refilledAt = performance.now();
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Number.POSITIVE_INFINITY;
  #closed = false;

  constructor(
    faults: DirectionFaults,
    random: SeededRandom,
    clock: LinkClock,
    /** Where this direction counts (shared with its stream flows). */
    readonly counters: ImpairCounters = zeroCounters(),
  ) {
    this.#f = faults;
    this.#random = random;
    this.#clock = clock;
    this.#drops = new Set(faults.drop);
    this.#shapes = faults.delay > 0 || faults.jitter > 0 || faults.rate > 0;
    this.#bucketBits = Math.max(MIN_BUCKET_BITS, (faults.rate * BUCKET_MS) / 1000);
    this.#tokens = this.#bucketBits;
  }

  /** A datagram the socket was asked to send. */
  push(datagram: Uint8Array, port: number | undefined, address: string | undefined, wire: Wire): void {
    if (this.#closed) return;
    const f = this.#f;
    const c = this.counters;
    const index = ++this.#index;
    if (f.blackhole !== null) {
      const now = performance.now();
      if (this.#clock.passesAt(now, f.blackhole) !== now) {
        c.dropped++;
        return;
      }
    }
    if ((f.mtu > 0 && datagram.byteLength > f.mtu) || this.#drops.has(index)) {
      c.dropped++;
      return;
    }
    if (f.loss > 0) {
      if (this.#burstLeft > 0) {
        this.#burstLeft--;
        this.#lostInARow++;
        c.dropped++;
        return;
      }
      if (f.burst > 0 && this.#lostInARow >= f.burst) {
        // `burst` is the most lost in a row: a burst right after another may not make a longer one
        this.#lostInARow = 0;
      } else if (this.#random.next() < f.loss) {
        if (f.burst > 1)
          this.#burstLeft = Math.min(this.#random.below(f.burst), f.burst - this.#lostInARow - 1);
        this.#lostInARow++;
        c.dropped++;
        return;
      } else this.#lostInARow = 0;
    }
    let out = datagram;
    if (f.corrupt > 0 && this.#random.next() < f.corrupt && !isVersionNegotiation(datagram)) {
      out = Uint8Array.prototype.slice.call(datagram);
      const at = this.#random.below(Math.min(CORRUPT_SPAN, out.length));
      out[at]! ^= 1 + this.#random.below(255);
      c.corrupted++;
    }
    const twice = f.duplicate > 0 && this.#random.next() < f.duplicate;
    this.#reorderStage(this.#pending(out, port, address, wire));
    if (twice) {
      c.duplicated++;
      this.#reorderStage(this.#pending(out, port, address, wire));
    }
  }

  /** Drops whatever is held; nothing more is sent. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#held = [];
    this.#delayed = [];
    this.#queued = [];
  }

  #pending(datagram: Uint8Array, port: number | undefined, address: string | undefined, wire: Wire): Pending {
    return { datagram, port, address, wire, at: 0, countdown: 0, overtaken: false, delayed: false };
  }

  #reorderStage(p: Pending): void {
    const f = this.#f;
    if (f.reorder > 0 && this.#random.next() < f.reorder) {
      p.countdown = f.gap;
      p.at = performance.now() + Math.max(MIN_REORDER_HOLD_MS, f.delay + f.jitter);
      this.#held.push(p);
      this.#arm(p.at);
      return;
    }
    this.#delayStage(p);
    const held = this.#held;
    if (held.length === 0) return;
    // this one went ahead of every held datagram: those it was the last to overtake go now
    let kept = 0;
    for (let i = 0; i < held.length; i++) {
      const h = held[i]!;
      h.overtaken = true;
      if (--h.countdown > 0) held[kept++] = h;
      else this.#releaseHeld(h);
    }
    held.length = kept;
  }

  #releaseHeld(h: Pending): void {
    if (h.overtaken) this.counters.reordered++;
    this.#delayStage(h);
  }

  #delayStage(p: Pending): void {
    if (!this.#shapes) {
      p.wire.send(p.datagram, p.port, p.address);
      return;
    }
    const f = this.#f;
    const now = performance.now();
    if (f.delay === 0 && f.jitter === 0) {
      this.#rateStage(p, now);
      return;
    }
    const spread = f.jitter > 0 ? (this.#random.next() * 2 - 1) * f.jitter : 0;
    p.at = now + Math.max(0, f.delay + spread);
    p.delayed = true;
    this.counters.delayed++;
    // mostly in order (jitter aside): insert from the back
    const q = this.#delayed;
    let i = q.length;
    while (i > 0 && q[i - 1]!.at > p.at) i--;
    if (i === q.length) q.push(p);
    else q.splice(i, 0, p);
    this.#arm(q[0]!.at);
  }

  #rateStage(p: Pending, now: number): void {
    const f = this.#f;
    if (f.rate === 0) {
      p.wire.send(p.datagram, p.port, p.address);
      return;
    }
    this.#refill(now);
    const bits = p.datagram.byteLength * 8;
    if (this.#queued.length === 0 && this.#tokens >= bits) {
      this.#tokens -= bits;
      p.wire.send(p.datagram, p.port, p.address);
      return;
    }
    if (this.#queued.length >= f.queue) {
      this.counters.dropped++;
      return;
    }
    if (!p.delayed) {
      p.delayed = true;
      this.counters.delayed++;
    }
    this.#queued.push(p);
    if (this.#queued.length === 1) this.#arm(now + ((bits - this.#tokens) * 1000) / f.rate);
  }

  #refill(now: number): void {
    const elapsed = now - this.#refilledAt;
    this.#refilledAt = now;
    this.#tokens = Math.min(this.#bucketBits, this.#tokens + (elapsed * this.#f.rate) / 1000);
  }

  /** One timer per direction, at the earliest thing due. */
  #arm(at: number): void {
    if (this.#closed || at >= this.#timerAt - 0.5) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#run, Math.max(0, Math.ceil(at - performance.now())));
    // a proxy's listeners keep the process alive, not datagrams in flight
    this.#timer.unref();
  }

  readonly #run = (): void => {
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now() + 0.5;
    const held = this.#held;
    if (held.length > 0) {
      let kept = 0;
      for (let i = 0; i < held.length; i++) {
        const h = held[i]!;
        if (h.at <= now) this.#releaseHeld(h);
        else held[kept++] = h;
      }
      held.length = kept;
    }
    const delayed = this.#delayed;
    let due = 0;
    while (due < delayed.length && delayed[due]!.at <= now) due++;
    if (due > 0) {
      const leaving = delayed.splice(0, due);
      for (const p of leaving) this.#rateStage(p, now);
    }
    const queued = this.#queued;
    if (queued.length > 0) {
      this.#refill(now);
      let sent = 0;
      while (sent < queued.length) {
        const p = queued[sent]!;
        const bits = p.datagram.byteLength * 8;
        if (this.#tokens < bits) break;
        this.#tokens -= bits;
        p.wire.send(p.datagram, p.port, p.address);
        sent++;
      }
      if (sent > 0) queued.splice(0, sent);
    }
    this.#rearm(now);
  };

  #rearm(now: number): void {
    let next = Number.POSITIVE_INFINITY;
    for (const h of this.#held) next = Math.min(next, h.at);
    if (this.#delayed.length > 0) next = Math.min(next, this.#delayed[0]!.at);
    if (this.#queued.length > 0) {
      const bits = this.#queued[0]!.datagram.byteLength * 8;
      next = Math.min(next, now + Math.max(0, ((bits - this.#tokens) * 1000) / this.#f.rate));
    }
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
  }
}
