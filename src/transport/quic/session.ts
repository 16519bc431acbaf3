/**
 * A QUIC connection as a wirelayer session, driven sans-IO: the endpoint feeds datagrams in
 * (`receive`) and calls `flush` once per batch, which moves stream and datagram data, sends
 * what quiche has to send, and rearms the session's deadline. The model is filled from the
 * wire: ClientHello and ServerHello from the Initial packets, the rest from quiche.
 */
import { certificateFromDer } from '../../certs/parsed.js';
import { type Client, ConnectionState, now, type Server } from '../../connection/index.js';
import { quicVersionFromWire } from '../../handshake/versions.js';
import { BaseSession } from '../session.js';
import type { DatagramSession, StreamSession } from '../types.js';
import type { ConnectionError, HostPort, QuicheConnection, RecvInfo } from './binding.js';
import { type CidGenerator, newResetToken, RANDOM_CIDS } from './cid.js';
import { QuicDatagramChannel } from './datagrams.js';
import type { EndpointStats } from './endpoint.js';
import { describeClose, isCleanClose, QuicErrorCode } from './errors.js';
import type { KeylogTarget } from './keylog.js';
import { SessionKeylog } from './keylog.js';
import type { InitialObserver } from './observer.js';
import { isServerInitiated, isUnidirectional, QuicStream, type StreamHost } from './stream.js';

/** What a session needs of the endpoint that owns its socket. */
export interface SessionTransport {
  /** Flush this session at the end of the current batch. */
  markDirty(session: QuicSession): void;
  /** Send every datagram quiche has for this session. */
  transmit(session: QuicSession): void;
  /** quiche's next deadline for the session, in ms from now (null: none). */
  arm(session: QuicSession, timeoutMs: number | null): void;
  /** Route datagrams with this DCID to the session; false if it is taken. */
  register(cid: Uint8Array, session: QuicSession): boolean;
  unregister(cid: Uint8Array): void;
  /** The engine is closed (draining done): forget the session. */
  retire(session: QuicSession): void;
  /** A receive buffer shared by the endpoint's sessions (used synchronously only). */
  readonly scratch: Buffer;
  /** The endpoint's counters (the session counts quiche's refusals there). */
  readonly stats: EndpointStats;
}

export interface QuicSessionInit<C extends Client | Server> {
  conn: C;
  engine: QuicheConnection;
  transport: SessionTransport;
  isServer: boolean;
  /** Our address as quiche knows it (recvInfo.to). */
  local: HostPort;
  /** The peer's address the connection starts on. */
  peer: HostPort;
  /** Our first source connection ID (already in the routing table or to be added). */
  scid: Uint8Array;
  /** Follows the Initials for the cipher (and, server side, was fed the ClientHello). */
  observer: InitialObserver | null;
  keylog?: KeylogTarget;
  /** Source connection IDs we issue at most (routing table entries per session). */
  maxCids: number;
  /** Makes the spare source connection IDs (a listener's generator); default random. */
  cids?: CidGenerator;
  /** The stateless reset token of each spare ID (a listener's, derived from its key); default random. */
  resetToken?: (cid: Uint8Array) => bigint;
  /** Client side, no SNI sent for an IP literal: the IP the leaf certificate must name. */
  verifyIp?: string | null;
  /** Handshake timeout text for the model when quiche's idle timer ends a handshake. */
  timeoutMessage?: string;
}

const EMPTY = new Uint8Array(0);
/** How long flushes watch for path events after a datagram came from a new address. */
const PATH_WATCH_MS = 3000;
/** How long `close()` waits for blocked writes to reach quiche before closing anyway. */
export const CLOSE_GRACE_MS = 2000;

/** The code of a CONNECTION_CLOSE with an error: a TLS alert, an application's or a transport's. */
function closeCode(err: ConnectionError): string {
  if (err.isApp) return 'ERR_QUIC_APPLICATION_ERROR';
  return err.errorCode >= QuicErrorCode.CRYPTO_ERROR && err.errorCode <= 0x1ff
    ? 'ERR_QUIC_CRYPTO_ERROR'
    : 'ERR_QUIC_TRANSPORT_ERROR';
}

/** A QUIC connection: `stream` (the first bidirectional stream), `openStream()`, `datagrams` (DATAGRAM frames), and the model in `conn`. */
export class QuicSession<C extends Client | Server = Client | Server>
  extends BaseSession<C>
  implements StreamSession<C>, DatagramSession<C>, StreamHost
{
  readonly engine: QuicheConnection;
  readonly isServer: boolean;
  /** The endpoint's receive buffer: sessions are flushed one at a time, never concurrently. */
  readonly scratch: Buffer;
  readonly datagrams: QuicDatagramChannel;
  /** Reused for every datagram: only `from` changes. */
  readonly recvInfo: RecvInfo;
  /** Endpoint bookkeeping: pending flush, deadline (performance.now() ms), slot in its deadline heap. */
  dirty = false;
  /** Inside `flush()`: a stream's sendNow waits for its transmit. */
  #flushing = false;
  deadline = Number.POSITIVE_INFINITY;
  /** The code of the failure that ended the session (a ConnectError's or SessionError's `code`), or null. */
  failureCode: string | null = null;
  heapIndex = -1;

  readonly #transport: SessionTransport;
  readonly #streams = new Map<number, QuicStream>();
  readonly #blocked = new Set<QuicStream>();
  readonly #scids: Uint8Array[] = [];
  /**
   * The client's first DCID (server side), routed to us for the session's life: a late copy
   * of the client's first Initial must reach this session, not start another.
   */
  #handshakeRoute: Uint8Array | null = null;
  readonly #maxCids: number;
  readonly #cids: CidGenerator;
  readonly #resetToken: (cid: Uint8Array) => bigint;
  readonly #verifyIp: string | null;
  readonly #timeoutMessage: string;
  #observer: InitialObserver | null;
  #keylog: SessionKeylog | null = null;
  #first: QuicStream | null = null;
  /** Next stream IDs we open, bidirectional and unidirectional. */
  #nextBidi: number;
  #nextUni: number;
  /** Highest peer-opened stream IDs seen, so a finished one is not made anew. */
  #peerBidiSeen = -1;
  #peerUniSeen = -1;
  #closeRequested = false;
  /** Until when flushes look at path events (performance.now() ms). */
  #pathWatchUntil = 0;
  #retired = false;
  #failure: string | null = null;
  /**
   * Client side: a datagram of 1-RTT packets only has arrived, so the server is done and has
   * (in practice, in that datagram) sent HANDSHAKE_DONE: our handshake is confirmed. Before
   * that, quiche sends a close at the Handshake level only, which a server that is done drops.
   */
  #shortSeen = false;

  constructor(init: QuicSessionInit<C>) {
    super('quic', init.conn);
    this.engine = init.engine;
    this.isServer = init.isServer;
    this.#transport = init.transport;
    this.scratch = init.transport.scratch;
    this.#observer = init.observer;
    this.#maxCids = Math.max(1, init.maxCids);
    this.#cids = init.cids ?? RANDOM_CIDS;
    this.#resetToken = init.resetToken ?? newResetToken;
    this.#verifyIp = init.verifyIp ?? null;
    this.#timeoutMessage = init.timeoutMessage ?? 'Handshake timed out';
    this.#nextBidi = init.isServer ? 1 : 0;
    this.#nextUni = init.isServer ? 3 : 2;
    this.recvInfo = { from: { host: init.peer.host, port: init.peer.port }, to: init.local };
    this.datagrams = new QuicDatagramChannel((d) => this.#sendDatagram(d));
    this.conn.transportProtocol = 'udp';
    this.conn.tls = true;
    this.#addScid(init.scid);
    if (init.keylog) this.#keylog = new SessionKeylog(init.keylog, init.engine);
  }

  /**
   * The first bidirectional stream (ID 0, opened by the client): the session's byte stream
   * for the StreamSession interface. On the server it carries data once the client has
   * written on it; what the server writes before that waits.
   */
  get stream(): QuicStream {
    if (this.#first) return this.#first;
    this.#first = this.isServer ? this.#streamFor(0, true)! : this.openStream();
    return this.#first;
  }

  /** Opens a stream of ours; bidirectional unless `{ bidirectional: false }`. */
  openStream(options: { bidirectional?: boolean } = {}): QuicStream {
    if (this.closed) throw new Error('QUIC session is closed');
    const bidi = options.bidirectional ?? true;
    const id = bidi ? this.#nextBidi : this.#nextUni;
    if (bidi) this.#nextBidi += 4;
    else this.#nextUni += 4;
    const stream = new QuicStream(this, id);
    this.#streams.set(id, stream);
    // the client's first bidirectional stream is `stream`, however it was opened
    if (id === 0) this.#first ??= stream;
    return stream;
  }

  /**
   * The counters of the endpoint the session runs on: its own socket for a dialed session
   * (ICMP errors after the handshake land here), the listener's for an accepted one.
   */
  get endpointStats(): Readonly<EndpointStats> {
    return this.#transport.stats;
  }

  /**
   * The source connection IDs this session issued and still routes: its first (a server's
   * is the Retry's when there was one) and the spares it gave out in NEW_CONNECTION_ID frames.
   */
  get sourceCids(): readonly Uint8Array[] {
    return this.#scids;
  }

  /** Live streams by ID. */
  get streams(): ReadonlyMap<number, QuicStream> {
    return this.#streams;
  }

  /** Hot path: one datagram from the endpoint. */
  receive(datagram: Buffer, address: string, port: number, observed = false): void {
    if (!this.#shortSeen && datagram.length > 0 && (datagram[0]! & 0x80) === 0) this.#shortSeen = true;
    const from = this.recvInfo.from;
    if (port !== from.port || address !== from.host) {
      // a new path (NAT rebinding, migration): watch quiche's path events while it is validated
      this.#pathWatchUntil = performance.now() + PATH_WATCH_MS;
      from.host = address;
      from.port = port;
    }
    // before recv: quiche decrypts in place
    const observer = this.#observer;
    if (observer !== null && !observed && !observer.done)
      observer.observe(datagram, this.isServer ? 'client' : 'server');
    try {
      this.engine.recv(datagram, this.recvInfo);
    } catch {
      // quiche closes the connection itself when the error is fatal; the flush sees it
      this.#transport.stats.recvErrors++;
    }
    if (!this.dirty) this.#transport.markDirty(this);
  }

  /** Hot path: a datagram we send, seen before it leaves (the ServerHello, server side). */
  observeOutgoing(datagram: Uint8Array): void {
    const observer = this.#observer;
    if (observer !== null && this.isServer && !observer.done) observer.observe(datagram, 'server');
  }

  /** Once per batch: streams, datagrams, sending, state, deadline. */
  flush(): void {
    this.dirty = false;
    if (this.#retired) return;
    this.#flushing = true;
    try {
      this.#flushOnce();
    } finally {
      this.#flushing = false;
    }
  }

  #flushOnce(): void {
    const engine = this.engine;
    if (!this.established && !this.closed && !this.#closeRequested && engine.isEstablished()) {
      this.#onEstablished();
    }
    if (this.established && !this.closed) {
      if (engine.isReadable()) {
        for (const id of engine.readable()) this.#streamFor(id, false)?.pull();
      }
      let n = engine.dgramRecv(this.scratch);
      while (n !== null) {
        this.datagrams.deliver(Buffer.from(this.scratch.subarray(0, n)));
        n = engine.dgramRecv(this.scratch);
      }
      if (this.#blocked.size > 0) {
        for (const stream of this.#blocked) if (stream.trySend()) this.#blocked.delete(stream);
      }
      if (this.#pathWatchUntil !== 0) {
        if (performance.now() < this.#pathWatchUntil) this.#pathEvents();
        else this.#pathWatchUntil = 0; // the window is over: no clock read per flush from now on
      }
    }
    this.#transport.transmit(this);
    this.#checkClosed();
    if (!this.#retired) this.#transport.arm(this, engine.timeout());
  }

  /** The deadline passed. */
  onTimeout(): void {
    if (this.#retired) return;
    this.engine.onTimeout();
    // retired IDs are rare: look for them (and path events) now and then
    if (this.established) this.#pathEvents();
    this.flush();
  }

  #onEstablished(): void {
    const conn = this.conn;
    const engine = this.engine;
    const chain = engine.peerCertChain() ?? [];
    try {
      conn.certificateList = chain.map((der) => certificateFromDer(der));
    } catch {
      conn.certificateList = [];
    }
    if (this.#verifyIp !== null) {
      const leaf = conn.certificateList[0];
      if (!leaf || leaf.checkIP(this.#verifyIp) === undefined) {
        this.#failure = `Certificate verify failed: IP address mismatch, certificate is not valid for ${this.#verifyIp}`;
        this.#closeRequested = true;
        this.#try(() => engine.close(false, QuicErrorCode.CRYPTO_ERROR + 42, EMPTY));
        return;
      }
    }
    conn.timestampTlsSetup = now();
    conn.alpn = Buffer.from(engine.applicationProto()).toString('latin1');
    conn.tlsVersion = quicVersionFromWire(this.#observer?.version ?? 1);
    conn.cipher = this.#observer?.cipher ?? null;
    conn.state = ConnectionState.OPEN;
    this.#observer = null;
    this.#keylog?.drain(conn);
    // spare connection IDs, so the peer can move to a new path (bounded per session)
    for (let i = this.#scids.length; i < this.#maxCids && engine.sourceCidsLeft() > 0; i++) {
      const cid = this.#cids.next();
      if (!this.#addScid(cid)) continue;
      if (!this.#try(() => engine.newSourceCid(cid, this.#resetToken(cid), false))) {
        this.#transport.unregister(cid);
        break;
      }
    }
    this.markUp();
  }

  /** Server side: route the client's first DCID here too. */
  routeHandshake(dcid: Uint8Array): void {
    if (this.#handshakeRoute === null && this.#transport.register(dcid, this)) this.#handshakeRoute = dcid;
  }

  #dropHandshakeRoute(): void {
    if (this.#handshakeRoute !== null) this.#transport.unregister(this.#handshakeRoute);
    this.#handshakeRoute = null;
  }

  #addScid(cid: Uint8Array): boolean {
    if (!this.#transport.register(cid, this)) return false;
    this.#scids.push(cid);
    return true;
  }

  #pathEvents(): void {
    const engine = this.engine;
    for (let event = engine.pathEventNext(); event !== null; event = engine.pathEventNext()) {
      if (event.type === 'PeerMigrated') {
        this.#pathWatchUntil = 0;
        this.conn.peername = [event.new.host, event.new.port];
        this.emit('migrated', this.conn.peername);
      }
    }
    for (let cid = engine.retiredScidNext(); cid !== null; cid = engine.retiredScidNext()) {
      const at = this.#scids.findIndex((c) => Buffer.compare(c, cid) === 0);
      if (at >= 0) {
        this.#transport.unregister(cid);
        this.#scids.splice(at, 1);
      }
    }
  }

  /** Our stream, or a peer's (made and announced on first sight when `create`). */
  #streamFor(id: number, create: boolean): QuicStream | undefined {
    const existing = this.#streams.get(id);
    if (existing) return existing;
    const peers = isServerInitiated(id) !== this.isServer;
    if (!peers) return undefined;
    const uni = isUnidirectional(id);
    const seen = uni ? this.#peerUniSeen : this.#peerBidiSeen;
    if (id <= seen && !(create && id === 0 && this.#first === null)) return undefined;
    if (uni) this.#peerUniSeen = Math.max(seen, id);
    else this.#peerBidiSeen = Math.max(seen, id);
    // RFC 9000 3.2: a peer opening stream `id` opens every lower one of its type too. quiche
    // lists readable streams in no particular order, so 10 may show up before 6: the lower
    // ones are made (and announced) now, in order, or they would pass for finished ones
    for (let lower = seen < 0 ? id & 3 : seen + 4; lower < id; lower += 4) this.#peerStream(lower, false);
    return this.#peerStream(id, create);
  }

  #peerStream(id: number, create: boolean): QuicStream {
    const stream = new QuicStream(this, id);
    this.#streams.set(id, stream);
    if (!create || id !== 0) this.emit('stream', stream);
    // the peer opened it: our `stream` is this one when it is stream 0
    if (id === 0 && this.isServer) this.#first ??= stream;
    return stream;
  }

  #sendDatagram(datagram: Uint8Array): boolean {
    if (this.closed) throw new Error('QUIC session is closed');
    let queued: boolean;
    try {
      queued = this.engine.dgramSend(datagram) !== null;
    } catch (e) {
      throw new Error(`QUIC datagram not sent: ${(e as Error).message}`);
    }
    this.wake();
    return queued;
  }

  #checkClosed(): void {
    const engine = this.engine;
    if (engine.isClosed()) {
      this.#end();
      this.#retire();
    } else if (!this.closed && (engine.isDraining() || this.#closeRequested)) {
      this.#end();
    }
  }

  #end(): void {
    if (this.closed) return;
    const engine = this.engine;
    const peer = engine.peerError();
    const local = engine.localError();
    let error: string | null = this.#failure;
    let code: string | null = error === null ? null : 'ERR_TLS_CERT_ALTNAME_INVALID';
    if (error === null && peer && !isCleanClose(peer, this.conn.alpn)) {
      error = describeClose(peer, 'peer', !this.isServer);
      code = closeCode(peer);
    } else if (error === null && local && !isCleanClose(local, this.conn.alpn)) {
      error = describeClose(local, 'local', !this.isServer);
      code = closeCode(local);
    } else if (error === null && !this.established && engine.isTimedOut()) {
      error = this.#timeoutMessage;
      code = 'ETIMEDOUT';
    } else if (
      error === null &&
      peer === null &&
      local === null &&
      !this.#closeRequested &&
      !engine.isTimedOut() &&
      engine.isClosed()
    ) {
      // closed with no error on either side, no timeout and no close of ours: quiche does
      // that only for a datagram ending in the peer's stateless reset token (RFC 9000, 10.3)
      error = 'Stateless reset: the peer no longer holds the connection';
      code = 'ERR_QUIC_STATELESS_RESET';
    }
    if (error !== null || this.conn.error !== null) this.failureCode ??= code ?? 'ERR_QUIC';
    for (const stream of this.#streams.values()) stream.abort(error ? new Error(error) : undefined);
    this.#streams.clear();
    this.#blocked.clear();
    this.datagrams.end();
    this.#keylog?.close(this.conn);
    this.markClosed(error);
  }

  #retire(): void {
    if (this.#retired) return;
    this.#retired = true;
    for (const cid of this.#scids) this.#transport.unregister(cid);
    this.#scids.length = 0;
    this.#dropHandshakeRoute();
    this.#transport.retire(this);
  }

  #try(fn: () => unknown): boolean {
    try {
      fn();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Closes gracefully: waits (at most CLOSE_GRACE_MS) for blocked writes to reach quiche and,
   * on a client, for the handshake to be confirmed (see #shortSeen), then sends
   * CONNECTION_CLOSE with NO_ERROR (application code `code` if given), and resolves once the
   * model is CLOSED.
   */
  close(code = 0, reason = ''): Promise<void> {
    if (!this.closed && !this.#closeRequested) {
      const deadline = performance.now() + CLOSE_GRACE_MS;
      const go = (): void => {
        if (this.closed || this.#closeRequested) return;
        const waiting = this.#blocked.size > 0 || (!this.isServer && !this.#shortSeen);
        if (waiting && this.established && performance.now() < deadline) {
          setTimeout(go, 5);
          return;
        }
        this.#closeRequested = true;
        this.#try(() => this.engine.close(true, code, Buffer.from(reason)));
        this.wake();
      };
      go();
    }
    return this.whenClosed();
  }

  /** Closes at once (CONNECTION_CLOSE with application error 1 when `error` is given). */
  destroy(error?: Error): void {
    if (this.#retired) return;
    if (error) this.conn.error ??= error.message;
    if (!this.#closeRequested) {
      this.#closeRequested = true;
      this.#try(() =>
        this.engine.close(true, error ? 1 : 0, Buffer.from(error?.message.slice(0, 100) ?? '')),
      );
    }
    this.#transport.transmit(this);
    this.#end();
    this.#retire();
  }

  // StreamHost
  wake(): void {
    if (!this.dirty && !this.#retired) this.#transport.markDirty(this);
  }

  sendNow(): void {
    // inside a flush, its transmit comes after the streams: nothing to add
    if (this.#flushing || this.#retired) return;
    this.#transport.transmit(this);
    this.#transport.arm(this, this.engine.timeout());
  }

  blocked(stream: QuicStream): void {
    this.#blocked.add(stream);
  }

  forget(stream: QuicStream): void {
    this.#blocked.delete(stream);
    if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id);
  }
}
