/**
 * A QUIC endpoint: one datagram socket (native or node:dgram), the sessions on it, and the
 * routing between them.
 * Every datagram is routed by its destination connection ID (ours have a fixed length, so
 * short headers route too), never by the sender's address: a session survives the peer's
 * address or port changing. Per datagram the work is a table lookup and `recv`; sessions are
 * flushed once per batch of datagrams, and one timer serves every session's deadline.
 */
import type { RemoteInfo } from 'node:dgram';
import {
  type DatagramBackend,
  type DatagramSocket,
  isWildcardAddress,
  openDatagramSocket,
  type ReceiveInfo,
} from '../datagram/index.js';
import { resolveHost } from '../udp/socket.js';
import type { HostPort } from './binding.js';
import { CID_LENGTH, CidTable, dcidLength, dcidOffset } from './cid.js';
import { MAX_SEND_UDP_PAYLOAD } from './config.js';
import { DeadlineHeap } from './deadlines.js';
import type { QuicSession, SessionTransport } from './session.js';

/** Datagrams one session sends per flush before others get a turn. */
const MAX_BURST = 64;
/**
 * Datagrams a closed session (closing: only CONNECTION_CLOSE left to say) sends per flush, and
 * it is not flushed again for more: quiche repeats a client's Handshake-level close for as
 * long as it is asked (a busy loop of tens of thousands of datagrams a second otherwise).
 */
const CLOSED_BURST = 2;
/** Outgoing datagrams are carved from slabs: a pending send keeps its slab alive. */
const SLAB_SIZE = 64 * 1024;
/** Stream and datagram reads go through this buffer, one per endpoint. */
const SCRATCH_SIZE = 64 * 1024;
/** SO_RCVBUF and SO_SNDBUF of an endpoint's socket (the kernel caps them). */
export const SOCKET_BUFFER_SIZE = 4 * 1024 * 1024;

/** What an endpoint counted instead of crashing (DESIGN.md principle 6). */
export interface EndpointStats {
  /** Datagrams received. */
  received: number;
  /** Datagrams sent. */
  sent: number;
  /** Too short to hold a connection ID. */
  garbage: number;
  /** No session has their DCID and nobody took them (short headers, stray long headers). */
  unroutable: number;
  /** Packets quiche could not build (`send` threw); the session's flush stopped there. */
  sendErrors: number;
  /** Datagrams quiche refused with an error (`recv` threw); quiche closes the connection when it is fatal. */
  recvErrors: number;
  /** Errors the socket reported: failed sends, and on a client's connected socket ICMP errors. */
  socketFailures: number;
  /** Of those, ICMP errors: port, host or network unreachable (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH). */
  unreachable: number;
}

/** Socket error codes that come from ICMP errors a connected UDP socket received. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * Takes datagrams no session claims (a listener: new Initials); `local` is the address it
 * arrived on when the endpoint is bound to a wildcard on the native socket, else null.
 */
export type UnroutableHandler = (datagram: Buffer, rinfo: RemoteInfo, local: string | null) => void;

export interface EndpointOptions {
  host: string;
  port: number;
  /** Client endpoints connect their socket (an IP literal): ICMP errors surface, sends skip the lookup. */
  connectTo?: HostPort;
  /** The datagram socket underneath (default: `datagramBackend()`'s choice). */
  backend?: DatagramBackend;
  /** A socket over the one opened, for the endpoint to use instead (a listener's PROXY protocol). */
  wrap?: (socket: DatagramSocket) => DatagramSocket;
}

export class QuicEndpoint implements SessionTransport {
  readonly socket: DatagramSocket;
  /** Our bound address as quiche knows it. */
  readonly local: HostPort;
  readonly connected: boolean;
  /**
   * Bound to a wildcard on the native socket: each datagram tells the address it arrived on, and
   * each packet leaves from its path's local address (sessions know theirs: quiche's `from`).
   */
  readonly perPacketLocal: boolean;
  readonly stats: EndpointStats = {
    received: 0,
    sent: 0,
    garbage: 0,
    unroutable: 0,
    sendErrors: 0,
    recvErrors: 0,
    socketFailures: 0,
    unreachable: 0,
  };
  readonly sessions = new Set<QuicSession>();
  readonly scratch = Buffer.allocUnsafe(SCRATCH_SIZE);
  readonly #routes = new CidTable<QuicSession>();
  readonly #deadlines = new DeadlineHeap<QuicSession>();
  /** Sessions whose deadline passed, taken from the heap before any is run (reused). */
  readonly #due: QuicSession[] = [];
  #unroutable: UnroutableHandler | null = null;
  #dirty: QuicSession[] = [];
  #immediate: NodeJS.Immediate | null = null;
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Number.POSITIVE_INFINITY;
  #slab = Buffer.allocUnsafe(SLAB_SIZE);
  #slabUsed = 0;
  #closed = false;
  /** Close the socket once the last session is retired (client endpoints). */
  closeWhenIdle = false;
  /**
   * Length of the connection IDs this endpoint's sessions issue, which short headers do not
   * carry: a listener with its own `CidGenerator` sets it before the first datagram.
   */
  shortCidLength = CID_LENGTH;

  private constructor(socket: DatagramSocket, local: HostPort, connected: boolean) {
    this.socket = socket;
    this.local = local;
    this.connected = connected;
    this.perPacketLocal = !connected && socket.backend === 'native' && isWildcardAddress(local.host);
    socket.onMessage(this.#onMessage);
    // always listened to: an ICMP error on a client's socket must be counted, never thrown
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.stats.socketFailures++;
      if (err.code !== undefined && UNREACHABLE.has(err.code)) this.stats.unreachable++;
    });
  }

  /** Binds (and for a client, connects) a socket. */
  static async open(options: EndpointOptions): Promise<QuicEndpoint> {
    const local = await resolveHost(options.host);
    const to = options.connectTo;
    const socket = await openDatagramSocket({
      family: to === undefined ? local.family : to.host.includes(':') ? 6 : 4,
      address: local.address,
      port: options.port,
      connect: to === undefined ? undefined : { address: to.host, port: to.port },
      packetInfo: to === undefined && isWildcardAddress(local.address),
      backend: options.backend,
    });
    for (const set of [socket.setRecvBufferSize, socket.setSendBufferSize]) {
      try {
        set.call(socket, SOCKET_BUFFER_SIZE);
      } catch {
        // the kernel caps it; fine
      }
    }
    const bound = socket.address();
    return new QuicEndpoint(
      options.wrap?.(socket) ?? socket,
      { host: bound.address, port: bound.port },
      options.connectTo !== undefined,
    );
  }

  /**
   * An endpoint over a socket already bound (a proxy's tunnel: one destination of a SOCKS5
   * association, or a client's SOCKS5 wrapper): every send carries its peer's address, and
   * closing the endpoint closes the socket.
   */
  static over(socket: DatagramSocket): QuicEndpoint {
    const bound = socket.address();
    return new QuicEndpoint(socket, { host: bound.address, port: bound.port }, false);
  }

  /** Datagrams no session claims go here. */
  onUnroutable(handler: UnroutableHandler): void {
    this.#unroutable = handler;
  }

  /** Socket errors (after open) go here. */
  onError(handler: (error: Error) => void): void {
    this.socket.on('error', handler);
  }

  get closed(): boolean {
    return this.#closed;
  }

  readonly #onMessage = (msg: Buffer, address: string, port: number, info: ReceiveInfo): void => {
    this.stats.received++;
    const length = dcidLength(msg, this.shortCidLength);
    if (length < 0) {
      this.stats.garbage++;
      return;
    }
    const session = this.#routes.get(msg, dcidOffset(msg), length);
    if (session !== undefined) session.receive(msg, address, port);
    else if (this.#unroutable !== null) {
      // off the hot path (a new Initial, a stray packet): the dgram-shaped sender it takes
      this.#unroutable(
        msg,
        { address, family: address.includes(':') ? 'IPv6' : 'IPv4', port, size: msg.length },
        this.perPacketLocal ? info.localAddress : null,
      );
    } else this.stats.unroutable++;
  };

  /** Adds a session (its connection IDs are registered by the session). */
  add(session: QuicSession): void {
    this.sessions.add(session);
  }

  // SessionTransport

  register(cid: Uint8Array, session: QuicSession): boolean {
    return this.#routes.add(cid, session);
  }

  unregister(cid: Uint8Array): void {
    this.#routes.delete(cid);
  }

  /** The session a DCID routes to (tests, diagnostics). */
  route(cid: Uint8Array): QuicSession | undefined {
    return this.#routes.get(cid);
  }

  get routes(): number {
    return this.#routes.size;
  }

  markDirty(session: QuicSession): void {
    if (session.dirty) return;
    session.dirty = true;
    this.#dirty.push(session);
    this.#immediate ??= setImmediate(this.#flushAll);
  }

  readonly #flushAll = (): void => {
    this.#immediate = null;
    const dirty = this.#dirty;
    this.#dirty = [];
    for (const session of dirty) this.#guard(session, false);
    // what the sessions queued goes out now, in one batch (GSO runs), not a loop turn later
    this.socket.flush();
  };

  /**
   * Flushes (or times out) one session. A throw from user code in an event handler must not
   * leave the other sessions of the batch unflushed: it is rethrown once they are done.
   */
  #guard(session: QuicSession, timeout: boolean): void {
    try {
      if (timeout) session.onTimeout();
      else session.flush();
    } catch (e) {
      session.dirty = false;
      process.nextTick(() => {
        throw e;
      });
    }
  }

  transmit(session: QuicSession): void {
    if (this.#closed) return;
    const engine = session.engine;
    const closed = session.closed;
    const burst = closed ? CLOSED_BURST : MAX_BURST;
    for (let i = 0; i < burst; i++) {
      if (this.#slabUsed + MAX_SEND_UDP_PAYLOAD > SLAB_SIZE) {
        this.#slab = Buffer.allocUnsafe(SLAB_SIZE);
        this.#slabUsed = 0;
      }
      const out = this.#slab.subarray(this.#slabUsed, this.#slabUsed + MAX_SEND_UDP_PAYLOAD);
      let result: ReturnType<typeof engine.send>;
      try {
        result = engine.send(out);
      } catch {
        this.stats.sendErrors++;
        return;
      }
      if (result === null) return;
      const n = result[0];
      if (n === 0) continue;
      const packet = out.subarray(0, n);
      // keep slices 8-byte aligned
      this.#slabUsed += (n + 7) & ~7;
      session.observeOutgoing(packet);
      this.stats.sent++;
      if (this.connected) this.socket.send(packet);
      else {
        const to = result[1].to;
        this.socket.send(packet, to.port, to.host, this.perPacketLocal ? result[1].from.host : null);
      }
    }
    // more to send: let other sessions and incoming datagrams have a turn first
    if (!closed) this.markDirty(session);
  }

  /** Sends a datagram made outside any session (Version Negotiation, Retry), from `from` if given. */
  sendRaw(datagram: Uint8Array, port: number, host: string, from: string | null = null): void {
    if (this.#closed) return;
    this.stats.sent++;
    this.socket.send(datagram, port, host, from);
  }

  arm(session: QuicSession, timeoutMs: number | null): void {
    if (timeoutMs === null) {
      this.#deadlines.set(session, Number.POSITIVE_INFINITY);
      return;
    }
    const at = performance.now() + timeoutMs;
    this.#deadlines.set(session, at);
    // a later timer than needed is moved; an earlier one just fires and re-arms
    if (at < this.#timerAt - 1) this.#setTimer(at);
  }

  #setTimer(at: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, Math.ceil(at - performance.now())));
  }

  readonly #onTimer = (): void => {
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const t = performance.now() + 0.5;
    // take every due session out first: one re-armed to a deadline already past waits for the
    // next firing instead of looping here
    const due = this.#due;
    for (let s = this.#deadlines.popDue(t); s !== undefined; s = this.#deadlines.popDue(t)) due.push(s);
    for (let i = 0; i < due.length; i++) this.#guard(due[i]!, true);
    due.length = 0;
    this.socket.flush();
    const next = this.#deadlines.next;
    if (next !== Number.POSITIVE_INFINITY && !this.#closed && next < this.#timerAt - 1) this.#setTimer(next);
  };

  retire(session: QuicSession): void {
    this.#deadlines.remove(session);
    this.sessions.delete(session);
    if (this.closeWhenIdle && this.sessions.size === 0) void this.close();
  }

  /** Stops everything: timers, pending flushes, the socket. Sessions should be closed first. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#immediate !== null) clearImmediate(this.#immediate);
    this.#timer = null;
    this.#immediate = null;
    await this.socket.close();
  }
}
