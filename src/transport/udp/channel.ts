import { EventEmitter } from 'node:events';
import type { DatagramChannel } from '../types.js';

/** Bounds of a session's receive queue, as a kernel socket buffer has. */
export interface ReceiveQueueLimits {
  /** Datagrams held at most; default 256. */
  datagrams?: number;
  /** Payload bytes held at most; default 256 KiB (always room for one 65,507-byte datagram). */
  bytes?: number;
}

export const DEFAULT_QUEUE_DATAGRAMS = 256;
export const DEFAULT_QUEUE_BYTES = 256 * 1024;

/** Where a channel's outgoing datagrams go: the session that owns it. */
export interface DatagramSink {
  transmit(datagram: Uint8Array): void;
}

/**
 * The datagrams of one UDP session, boundaries kept.
 *
 * Incoming datagrams are emitted as `datagram` events to whoever listens, as `dgram` emits
 * `message`. They are also queued for the async iterator while it runs, and while nobody listens
 * at all (so the datagram that opened a flow waits for its reader). The queue is bounded by
 * datagrams and bytes; what does not fit is dropped and counted in `dropped`, as a kernel drops
 * on a full socket buffer.
 */
export class UdpChannel extends EventEmitter implements DatagramChannel {
  #listening = false;
  #iterating = false;
  #ended = false;
  #queue: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(4);
  readonly #capacity: number;
  #head = 0;
  #size = 0;
  #bytes = 0;
  readonly #maxBytes: number;
  #waiting: ((r: IteratorResult<Uint8Array>) => void) | null = null;
  /** Datagrams received. */
  received = 0;
  /** Datagrams sent. */
  sent = 0;
  /** Datagrams dropped: the receive queue was full, or sent after the session closed. */
  dropped = 0;

  constructor(
    private readonly sink: DatagramSink,
    limits: ReceiveQueueLimits = {},
  ) {
    super();
    this.#capacity = Math.max(1, limits.datagrams ?? DEFAULT_QUEUE_DATAGRAMS);
    this.#maxBytes = Math.max(65_535, limits.bytes ?? DEFAULT_QUEUE_BYTES);
    this.on('newListener', (event: string | symbol) => {
      if (event === 'datagram') this.#listening = true;
    });
    this.on('removeListener', (event: string | symbol) => {
      if (event === 'datagram') this.#listening = this.listenerCount('datagram') > 0;
    });
  }

  /** Datagrams waiting in the receive queue. */
  get queued(): number {
    return this.#size;
  }

  /** Bytes waiting in the receive queue. */
  get queuedBytes(): number {
    return this.#bytes;
  }

  send(datagram: Uint8Array): void {
    this.sink.transmit(datagram);
  }

  /**
   * Hands an incoming datagram to the reader (called by the session). Returns false when it was
   * dropped because the queue was full.
   */
  deliver(datagram: Uint8Array): boolean {
    this.received++;
    if (this.#listening) {
      this.emit('datagram', datagram);
      if (!this.#iterating) return true;
    }
    return this.#enqueue(datagram);
  }

  /** No more datagrams: the iteration ends once the queue drains. */
  end(): void {
    this.#ended = true;
    const waiting = this.#waiting;
    if (waiting !== null && this.#size === 0) {
      this.#waiting = null;
      waiting({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    this.#iterating = true;
    return {
      next: () => this.#next(),
      return: () => {
        // the reader is done: forget what it did not read, and stop queueing for it
        this.#iterating = false;
        this.#clear();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  #enqueue(datagram: Uint8Array): boolean {
    if (this.#ended) return false;
    const waiting = this.#waiting;
    if (waiting !== null) {
      this.#waiting = null;
      waiting({ value: datagram, done: false });
      return true;
    }
    if (this.#size === this.#capacity || this.#bytes + datagram.byteLength > this.#maxBytes) {
      this.dropped++;
      return false;
    }
    if (this.#size === this.#queue.length) this.#grow();
    this.#queue[(this.#head + this.#size) % this.#queue.length] = datagram;
    this.#size++;
    this.#bytes += datagram.byteLength;
    return true;
  }

  /** The ring starts small (most sessions are read as they go) and doubles up to the capacity. */
  #grow(): void {
    const old = this.#queue;
    const bigger = new Array<Uint8Array | undefined>(Math.min(this.#capacity, old.length * 2));
    for (let i = 0; i < this.#size; i++) bigger[i] = old[(this.#head + i) % old.length];
    this.#queue = bigger;
    this.#head = 0;
  }

  #shift(): Uint8Array {
    const datagram = this.#queue[this.#head] as Uint8Array;
    this.#queue[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#queue.length;
    this.#size--;
    this.#bytes -= datagram.byteLength;
    return datagram;
  }

  #next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#size > 0) return Promise.resolve({ value: this.#shift(), done: false });
    if (this.#ended || !this.#iterating) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiting !== null)
      return Promise.reject(new Error('a datagram channel has one iterating reader'));
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  #clear(): void {
    while (this.#size > 0) this.#shift();
    const waiting = this.#waiting;
    if (waiting !== null) {
      this.#waiting = null;
      waiting({ value: undefined, done: true });
    }
  }
}
