import { EventEmitter } from 'node:events';
import { BoundedQueue } from '../queue.js';
import type { DatagramChannel } from '../types.js';

/** Incoming datagrams waiting for a slow iterator; beyond this they are dropped (and counted). */
const ITERATOR_BACKLOG = 1024;

/**
 * QUIC DATAGRAM frames (RFC 9221) of a session: unreliable, boundaries kept. Incoming ones
 * are `datagram` events (and the async iterator); `send` drops (and counts) when quiche's
 * queue is full, as a UDP socket would.
 */
export class QuicDatagramChannel extends EventEmitter implements DatagramChannel {
  #queue: BoundedQueue<Uint8Array> | null = null;
  #ended = false;
  /** Outgoing datagrams dropped because the send queue was full. */
  dropped = 0;

  constructor(private readonly sender: (datagram: Uint8Array) => boolean) {
    super();
  }

  /** Queues a datagram; throws if it is larger than the peer accepts or the session is gone. */
  send(datagram: Uint8Array): void {
    if (!this.sender(datagram)) this.dropped++;
  }

  /** @internal A datagram arrived. */
  deliver(datagram: Uint8Array): void {
    this.emit('datagram', datagram);
    this.#queue?.push(datagram);
  }

  /** @internal The session closed: iteration ends. */
  end(): void {
    this.#ended = true;
    this.#queue?.end();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    // an iteration that ended (`break`) leaves its queue ended: a later one gets a fresh queue
    if (this.#queue === null || (this.#queue.ended && !this.#ended))
      this.#queue = new BoundedQueue<Uint8Array>(ITERATOR_BACKLOG);
    if (this.#ended) this.#queue.end();
    return this.#queue[Symbol.asyncIterator]();
  }
}
