import type { Socket } from 'node:net';
import { type Client, ConnectionState, type Server } from '../../connection/index.js';
import { describeSocketError } from '../errors.js';
import { BaseSession } from '../session.js';
import type { Scheme, StreamSession } from '../types.js';

/** How long a graceful `close()` waits for the peer's FIN before destroying the socket. */
export const CLOSE_GRACE_MS = 5000;

/**
 * A TCP connection as a session; `stream` is the socket itself. The model follows the socket:
 * created once connected (so `established` at once), the peer's FIN clears CAN_READ, ours clears CAN_WRITE, `close` sets CLOSED and `timestampEnd`.
 */
export class TcpSession<C extends Client | Server> extends BaseSession<C> implements StreamSession<C> {
  constructor(
    scheme: Scheme,
    conn: C,
    readonly stream: Socket,
  ) {
    super(scheme, conn);
    stream.on('end', () => this.#clear(ConnectionState.CAN_READ));
    stream.on('finish', () => this.#clear(ConnectionState.CAN_WRITE));
    stream.on('error', (err) => {
      this.conn.error ??= describeSocketError(err);
    });
    stream.on('close', () => this.markClosed());
    // a TCP session exists only once connected: it is up from the start
    this.markUp();
  }

  #clear(flag: ConnectionState): void {
    if (this.conn.state !== ConnectionState.CLOSED)
      this.conn.state = (this.conn.state & ~flag) as ConnectionState;
  }

  /** Sends our FIN, waits for the peer's (at most CLOSE_GRACE_MS), then the socket is gone. */
  close(): Promise<void> {
    if (!this.closed) {
      if (!this.stream.writableEnded) this.stream.end();
      // discard unread data: a paused socket would never see the peer's FIN (or reset)
      this.stream.resume();
      if (this.stream.readableEnded) this.stream.destroySoon();
      const timer = setTimeout(() => this.stream.destroy(), CLOSE_GRACE_MS);
      timer.unref();
      void this.whenClosed().then(() => clearTimeout(timer));
    }
    return this.whenClosed();
  }

  destroy(error?: Error): void {
    if (error) this.conn.error ??= error.message;
    this.stream.destroy();
  }
}
