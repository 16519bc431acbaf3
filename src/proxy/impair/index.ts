/**
 * A proxy's impairment: the two directions of its link (`up` toward the server, `down` back),
 * each with its own counters and its own PRNG (seeded from the spec's seed), so the decisions
 * of one direction do not depend on how the other's datagrams interleave with them.
 *
 * Layers hand it their sockets once (the listener's socket sends `down`, each server leg's
 * socket sends `up`) and stream flows their two writable sides; nothing else of the proxy
 * knows about it, and with no impairment it is never made.
 */

import { randomInt } from 'node:crypto';

import type { Duplex } from 'node:stream';
import { DatagramImpairer, type ImpairCounters, LinkClock, zeroCounters } from './impairer.js';
import { SeededRandom } from './random.js';
import { type ImpairableSocket, impairSocket } from './socket.js';
import { type ImpairSpec, isClear } from './spec.js';
import { StreamLink, StreamShaper } from './stream.js';

/** What the impairment did, per direction, and the seed that replays its decisions. */
export interface ImpairStats {
  seed: number;
  /** Client to server. */
  up: ImpairCounters;
  /** Server to client. */
  down: ImpairCounters;
}

/** Distinct PRNG streams per direction and per kind (datagrams, streams) from one seed. */
const STREAM_SALT = { up: 0x5f3759df, down: 0x1b873593, streamUp: 0x6b43a9b5, streamDown: 0x27d4eb2f };

/** The impairment of one proxy: its two directions, its stream links, its counters. */
export class Impairment {
  readonly seed: number;
  readonly up: DatagramImpairer | null;
  readonly down: DatagramImpairer | null;
  readonly #counters = { up: zeroCounters(), down: zeroCounters() };
  readonly #clock = new LinkClock();
  readonly #streams: { up: StreamLink | null; down: StreamLink | null };

  constructor(readonly spec: ImpairSpec) {
    this.seed = spec.seed ?? randomInt(0, 0xffff_ffff);
    const impairer = (d: 'up' | 'down'): DatagramImpairer | null => {
      if (isClear(spec[d])) return null;
      // one set of counters per direction, whichever kind of flow adds to it
      return new DatagramImpairer(
        spec[d],
        new SeededRandom(this.seed ^ STREAM_SALT[d]),
        this.#clock,
        this.#counters[d],
      );
    };
    this.up = impairer('up');
    this.down = impairer('down');
    const stream = (d: 'up' | 'down', salt: number): StreamLink | null => {
      const f = spec[d];
      if (f.delay === 0 && f.jitter === 0 && f.rate === 0 && f.blackhole === null) return null;
      return new StreamLink(f, new SeededRandom(this.seed ^ salt), this.#clock, this.#counters[d]);
    };
    this.#streams = { up: stream('up', STREAM_SALT.streamUp), down: stream('down', STREAM_SALT.streamDown) };
  }

  /** A listener's socket: what it sends goes to clients, `down`. */
  clientSocket(socket: ImpairableSocket): void {
    if (this.down !== null) impairSocket(socket, this.down, null, this.#counters.down);
  }

  /** A server leg's socket: what it sends goes to the server, `up` (and rebinding moves its source). */
  serverSocket(socket: ImpairableSocket): void {
    if (this.up !== null || this.spec.rebind !== null)
      impairSocket(socket, this.up, this.spec.rebind, this.#counters.up);
  }

  /**
   * What a stream relay writes to `leg` instead of `leg` itself (`up`: the server leg, `down`:
   * the client leg): a shaper that ends `leg` after its last byte and goes with it; `leg` itself
   * when this direction has nothing to do to a stream.
   */
  stream(direction: 'up' | 'down', leg: Duplex): Duplex {
    const link = this.#streams[direction];
    if (link === null) return leg;
    const shaper = new StreamShaper(link);
    shaper.pipe(leg);
    leg.once('close', () => shaper.destroy());
    return shaper;
  }

  /** A snapshot of the counters. */
  get stats(): ImpairStats {
    return { seed: this.seed, up: { ...this.#counters.up }, down: { ...this.#counters.down } };
  }

  /** Drops what is still held (the proxy is closing). */
  close(): void {
    this.up?.close();
    this.down?.close();
  }
}
