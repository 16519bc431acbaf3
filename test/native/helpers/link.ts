/**
 * An in-memory link between two engine sessions: no sockets. Datagrams can be dropped or
 * reordered deterministically. OpenSSL's retransmission timer reads the wall clock (it has no
 * clock to inject), so when nothing is in flight the link sleeps until the earliest
 * `timeout()`; tests make that short with `initialRetransmitMs`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DtlsSession } from '../../../src/transport/dtls/engine.js';

export type Direction = 'c2s' | 's2c';

export interface LinkOptions {
  /** Drop the `index`-th datagram (0-based, per direction) if this returns true. */
  drop?: (direction: Direction, index: number, datagram: Buffer) => boolean;
  /** Deliver each batch of datagrams in reverse order. */
  reorder?: boolean;
  /** Give up after this long (ms of wall clock). */
  limitMs?: number;
}

export interface LinkStats {
  sent: Record<Direction, Buffer[]>;
  delivered: Record<Direction, number>;
  timeouts: number;
}

export class Link {
  readonly stats: LinkStats = { sent: { c2s: [], s2c: [] }, delivered: { c2s: 0, s2c: 0 }, timeouts: 0 };

  constructor(
    readonly client: DtlsSession,
    readonly server: DtlsSession,
    readonly options: LinkOptions = {},
  ) {}

  /** Moves every queued datagram once; returns how many were taken. */
  step(): number {
    return this.#transfer(this.client, this.server, 'c2s') + this.#transfer(this.server, this.client, 's2c');
  }

  #transfer(from: DtlsSession, to: DtlsSession, direction: Direction): number {
    const out = from.takeOutgoing();
    if (!out) return 0;
    const batch = this.options.reorder ? [...out].reverse() : out;
    for (const d of batch) {
      const index = this.stats.sent[direction].length;
      this.stats.sent[direction].push(d);
      if (this.options.drop?.(direction, index, d)) continue;
      this.stats.delivered[direction]++;
      to.receive(d);
    }
    return out.length;
  }

  /** Runs until both ends are established (or one fails: then it throws with the errors). */
  async handshake(): Promise<void> {
    const limit = Date.now() + (this.options.limitMs ?? 10_000);
    if (this.client.status === 0) this.client.start();
    while (!(this.client.isEstablished && this.server.isEstablished)) {
      if (this.client.failed || this.server.failed) {
        throw new Error(
          `handshake failed: client=${this.client.error?.message} server=${this.server.error?.message}`,
        );
      }
      if (this.server.clientHelloPending) throw new Error('server paused on its ClientHello');
      if (this.step() > 0) continue;
      const timers = [this.client.timeout(), this.server.timeout()].filter((t) => t >= 0);
      if (timers.length === 0) throw new Error('handshake stalled: nothing in flight and no timer running');
      if (Date.now() > limit) throw new Error('handshake did not complete in time');
      await sleep(Math.min(...timers));
      this.stats.timeouts++;
      this.client.onTimeout();
      this.server.onTimeout();
    }
    this.step(); // whatever the last flight left behind
  }
}
