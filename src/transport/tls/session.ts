import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { type Client, ConnectionState, type Server } from '../../connection/index.js';
import { describeSocketError } from '../errors.js';
import { BaseSession } from '../session.js';
import { CLOSE_GRACE_MS, type TcpSession } from '../tcp/session.js';
import type { Scheme, StreamSession } from '../types.js';

/** What the session carries: TLS over the TCP session, or (a detecting listener) plain TCP. */
export type TlsLayer = 'pending' | 'tls' | 'plain' | 'passthrough';

/**
 * A TLS layer over a TCP session. `stream` is the TLS socket (plaintext in and out) once the
 * handshake is done; `up` is emitted only then, with every handshake field of `conn` filled.
 * A detecting listener may instead find plain TCP: `layer` is then `plain` and `stream` the TCP
 * socket itself.
 */
export class TlsSession<C extends Client | Server> extends BaseSession<C> implements StreamSession<C> {
  #stream: Duplex;
  #tls: TLSSocket | null = null;
  #layer: TlsLayer = 'pending';
  /** For a passed-through connection: the TCP session to the upstream server. */
  upstream: TcpSession<Server> | null = null;

  constructor(
    scheme: Scheme,
    conn: C,
    /** The TCP session beneath (same model). */
    readonly transport: TcpSession<C>,
  ) {
    super(scheme, conn);
    this.#stream = transport.stream;
    transport.stream.once('close', () => {
      if (this.#tls === null) this.markClosed();
    });
  }

  /** Plaintext data: the TLS socket once up (the TCP socket for a plain or pending session). */
  get stream(): Duplex {
    return this.#stream;
  }

  /** The TLS socket, once the TLS layer was started. */
  get tlsSocket(): TLSSocket | null {
    return this.#tls;
  }

  get layer(): TlsLayer {
    return this.#layer;
  }

  /** The raw TCP socket beneath. */
  get socket(): Socket {
    return this.transport.stream;
  }

  /** @internal The driver started the TLS engine on the TCP socket. */
  attachTls(socket: TLSSocket): void {
    this.#tls = socket;
    this.#layer = 'tls';
    this.#stream = socket;
    socket.on('end', () => this.#clear(ConnectionState.CAN_READ));
    socket.on('finish', () => this.#clear(ConnectionState.CAN_WRITE));
    socket.on('error', (err) => {
      if (this.established) this.conn.error ??= describeSocketError(err);
    });
    socket.on('close', () => this.markClosed());
  }

  /** @internal The handshake completed and the model is filled. */
  secured(): void {
    this.markUp();
  }

  /** @internal A detecting listener found plain TCP: the session is up as is. */
  plain(): void {
    this.#layer = 'plain';
    this.conn.tls = false;
    this.markUp();
  }

  /** @internal The connection is relayed untouched to `upstream`. */
  passthrough(upstream: TcpSession<Server>): void {
    this.#layer = 'passthrough';
    this.upstream = upstream;
    upstream.once('close', () => this.transport.stream.destroy());
    this.once('close', () => upstream.stream.destroy());
  }

  /** @internal The handshake failed: records `message` (the normalised error) and drops the connection. */
  fail(message: string): void {
    this.conn.error = message;
    if (this.conn.state !== ConnectionState.CLOSED) this.conn.state = ConnectionState.CLOSED;
    this.#destroyAll();
  }

  #clear(flag: ConnectionState): void {
    if (this.conn.state !== ConnectionState.CLOSED)
      this.conn.state = (this.conn.state & ~flag) as ConnectionState;
  }

  #destroyAll(): void {
    this.#tls?.destroy();
    this.transport.stream.destroy();
  }

  /** Sends close_notify and FIN, waits for the peer's (at most CLOSE_GRACE_MS); a pending handshake is dropped. */
  close(): Promise<void> {
    if (this.closed) return this.whenClosed();
    if (this.#layer === 'plain') return this.transport.close().then(() => this.whenClosed());
    const tls = this.#tls;
    if (this.#layer !== 'tls' || tls === null || !this.established) {
      this.#destroyAll();
      return this.whenClosed();
    }
    if (!tls.writableEnded) tls.end();
    // discard unread data: a paused socket would never see the peer's close_notify or FIN
    tls.resume();
    if (tls.readableEnded) tls.destroySoon();
    const timer = setTimeout(() => tls.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    void this.whenClosed().then(() => clearTimeout(timer));
    return this.whenClosed();
  }

  destroy(error?: Error): void {
    if (error) this.conn.error ??= error.message;
    this.#destroyAll();
  }
}
