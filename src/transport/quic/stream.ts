/**
 * A QUIC stream as a `Duplex`: reads pull from quiche only while the reader wants more (so a
 * slow reader withholds flow-control credit from the peer), writes go to quiche as far as
 * the stream's capacity allows and the rest waits until the session finds room.
 */
import { Duplex } from 'node:stream';
import { type QuicheConnection, Shutdown } from './binding.js';

/** What a stream needs of its session. */
export interface StreamHost {
  readonly engine: QuicheConnection;
  readonly isServer: boolean;
  /** A reusable receive buffer. */
  readonly scratch: Buffer;
  /** Something changed: flush the session soon (send, rearm its timer). */
  wake(): void;
  /**
   * A FIN with no data was written: put it in a packet now, not at the next flush. quiche 0.18
   * drops a FIN written at an offset the peer has already acknowledged if that ACK is processed
   * before the FIN is sent (cloudflare/quiche#2525): an echo that ends its stream a tick after
   * its data lost the end of the stream about one time in ten between two processes.
   */
  sendNow(): void;
  /** The stream has a write that did not fit; retry it when the session flushes. */
  blocked(stream: QuicStream): void;
  /** The stream is finished both ways or destroyed. */
  forget(stream: QuicStream): void;
}

const EMPTY = Buffer.alloc(0);
const STREAM_HIGH_WATER_MARK = 256 * 1024;

/** A stream error carrying the QUIC application error code (RESET_STREAM or STOP_SENDING). */
export class QuicStreamError extends Error {
  override readonly name = 'QuicStreamError';
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

/** Stream ID bits (RFC 9000, 2.1): bit 0 set = server-initiated, bit 1 set = unidirectional. */
export const isUnidirectional = (id: number): boolean => (id & 2) !== 0;
export const isServerInitiated = (id: number): boolean => (id & 1) !== 0;

/** quiche's error for "that stream does not exist (yet)" and for a peer's reset or stop. */
const RESET = /^StreamReset\((\d+)\)$/;
const STOPPED = /^StreamStopped\((\d+)\)$/;
const INVALID_STATE = /^InvalidStreamState/;

/** One QUIC stream as a Duplex, with backpressure both ways; FIN is `end()`, a reset is `destroy(err)`. */
export class QuicStream extends Duplex {
  readonly id: number;
  readonly bidirectional: boolean;
  /** Opened by us (else by the peer). */
  readonly local: boolean;
  readonly #host: StreamHost;
  #wantRead = false;
  #pulling = false;
  #recvDone: boolean;
  #sendDone: boolean;
  #pending: Uint8Array | null = null;
  #pendingCb: ((error?: Error | null) => void) | null = null;
  #finCb: ((error?: Error | null) => void) | null = null;

  constructor(host: StreamHost, id: number) {
    super({
      allowHalfOpen: true,
      readableHighWaterMark: STREAM_HIGH_WATER_MARK,
      writableHighWaterMark: STREAM_HIGH_WATER_MARK,
    });
    this.#host = host;
    this.id = id;
    this.bidirectional = !isUnidirectional(id);
    this.local = isServerInitiated(id) === host.isServer;
    this.#recvDone = !this.bidirectional && this.local;
    this.#sendDone = !this.bidirectional && !this.local;
    if (this.#recvDone) {
      // write-only: its readable side ends now (and flows, so 'end' fires without a reader)
      this.push(null);
      this.resume();
    }
    if (this.#sendDone) this.end();
  }

  /** Moves what quiche has for this stream into the readable side, while the reader wants it. */
  pull(): void {
    if (!this.#wantRead || this.#recvDone || this.#pulling || this.destroyed) return;
    this.#pulling = true;
    try {
      const { engine, scratch } = this.#host;
      for (;;) {
        let result: [number, boolean] | null;
        try {
          result = engine.streamRecv(this.id, scratch);
        } catch (e) {
          this.#recvError(e as Error);
          return;
        }
        if (result === null) return;
        const [n, fin] = result;
        if (n > 0) {
          const chunk = Buffer.allocUnsafe(n);
          scratch.copy(chunk, 0, 0, n);
          this.#wantRead = this.push(chunk);
        }
        if (fin) {
          this.#recvDone = true;
          this.push(null);
          return;
        }
        if (!this.#wantRead) return;
      }
    } finally {
      this.#pulling = false;
    }
  }

  override _read(): void {
    this.#wantRead = true;
    if (this.#pulling) return;
    this.pull();
    // reading frees flow-control credit the peer should hear about
    this.#host.wake();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#pending = chunk;
    this.#pendingCb = callback;
    this.trySend();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#sendDone) {
      callback();
      return;
    }
    this.#finCb = callback;
    this.trySend();
  }

  /**
   * Gives quiche what is waiting (a write, then the FIN). True when nothing is left waiting;
   * false when the stream is still blocked (the session will call again).
   */
  trySend(): boolean {
    const engine = this.#host.engine;
    try {
      const pending = this.#pending;
      if (pending !== null) {
        const n = engine.streamSend(this.id, pending, false) ?? 0;
        if (n < pending.length) {
          this.#pending = pending.subarray(n);
          if (n > 0) this.#host.wake();
          this.#host.blocked(this);
          return false;
        }
        const cb = this.#pendingCb!;
        this.#pending = null;
        this.#pendingCb = null;
        this.#host.wake();
        cb();
        return this.#pending === null && this.#finCb === null ? true : this.trySend();
      }
      const finCb = this.#finCb;
      if (finCb !== null) {
        if (engine.streamSend(this.id, EMPTY, true) === null) {
          this.#host.blocked(this);
          return false;
        }
        this.#finCb = null;
        this.#sendDone = true;
        this.#host.sendNow();
        finCb();
      }
      return true;
    } catch (e) {
      const message = (e as Error).message;
      // the peer's stream we answer on is not open yet: wait for it
      if (!this.local && INVALID_STATE.test(message) && !this.#recvDone) {
        this.#host.blocked(this);
        return false;
      }
      const stopped = STOPPED.exec(message);
      const error = stopped
        ? new QuicStreamError(
            `stream ${this.id} stopped by the peer (code ${stopped[1]})`,
            Number(stopped[1]),
          )
        : new Error(`stream ${this.id}: ${message}`);
      this.#sendDone = true;
      const cb = this.#pendingCb ?? this.#finCb;
      this.#pending = null;
      this.#pendingCb = null;
      this.#finCb = null;
      if (cb) cb(error);
      else this.destroy(error);
      return true;
    }
  }

  #recvError(e: Error): void {
    const reset = RESET.exec(e.message);
    if (reset) {
      this.#recvDone = true;
      this.destroy(
        new QuicStreamError(`stream ${this.id} reset by the peer (code ${reset[1]})`, Number(reset[1])),
      );
    } else if (!INVALID_STATE.test(e.message)) {
      this.destroy(new Error(`stream ${this.id}: ${e.message}`));
    }
    // InvalidStreamState: not opened by the peer yet; it will show up as readable
  }

  /** The session ended: nothing more will come or go. */
  abort(error?: Error): void {
    this.#recvDone = true;
    this.#sendDone = true;
    this.destroy(error);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const code = error instanceof QuicStreamError ? error.code : 0;
    const engine = this.#host.engine;
    try {
      if (!this.#recvDone) engine.streamShutdown(this.id, Shutdown.READ, code);
    } catch {
      // the stream or the connection is already gone
    }
    try {
      if (!this.#sendDone) engine.streamShutdown(this.id, Shutdown.WRITE, code);
    } catch {
      // likewise
    }
    const cb = this.#pendingCb ?? this.#finCb;
    this.#pending = null;
    this.#pendingCb = null;
    this.#finCb = null;
    this.#recvDone = true;
    this.#sendDone = true;
    this.#host.forget(this);
    this.#host.wake();
    if (cb) cb(error ?? new Error(`stream ${this.id} destroyed`));
    callback(error);
  }
}
