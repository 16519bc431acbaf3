import type { RemoteInfo } from 'node:dgram';
import { type Address, Client, ConnectionState } from '../../connection/index.js';
import {
  type DatagramBackend,
  type DatagramSocket,
  isWildcardAddress,
  openDatagramSocket,
  type ReceiveInfo,
} from '../datagram/index.js';
import { BaseListener } from '../listener.js';
import type { ListenerStats, ListenOptions } from '../types.js';
import type { ReceiveQueueLimits } from './channel.js';
import { type FlowOwner, UdpFlowSession } from './flow.js';
import { FlowTable } from './flow-table.js';
import { type ProxyProtocolOptions, ProxyProtocolSocket, type ProxyProtocolStats } from './proxy-protocol.js';
import { resolveHost, type SocketBufferOptions } from './socket.js';

/**
 * Idle timeout of a flow by default: 60 s, mitmproxy's (mitmproxy_rs `UDP_TIMEOUT`, an LRU expiry
 * of the flow table).
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** Flows held at most by default; beyond, the least recently active one is evicted. */
export const DEFAULT_MAX_FLOWS = 10_000;
/**
 * The listener's receive buffer (SO_RCVBUF) by default: 2 MiB, as the kernel allows
 * (`net.core.rmem_max` caps it). One socket carries every flow, so it needs more room than a
 * socket of one peer: Linux's default (208 KiB) holds only about 64 datagrams of 1200 bytes,
 * so a pause of a few ms (a GC scavenge) in a loaded relay drops datagrams.
 */
export const DEFAULT_LISTENER_RECV_BUFFER = 2 * 1024 * 1024;

/** Options of `udp.listen`. */
export interface UdpListenOptions extends ListenOptions, SocketBufferOptions {
  /**
   * The socket underneath: `native` (the addon: batched syscalls, and on a wildcard address the
   * real local address of each peer as its Client's `sockname`, answered from), or `dgram`.
   * Default: `WIRELAYER_DATAGRAM`, else native where it loads (Linux).
   */
  datagramBackend?: DatagramBackend;
  /**
   * Flows held at most (default 10,000). A datagram from a new peer at the cap evicts the least
   * recently active flow (its session is destroyed with `error` "Flow evicted ...") and is counted
   * in `stats.evictions`.
   */
  maxFlows?: number;
  /** Bounds of each flow's receive queue (see `UdpChannel`). */
  receiveQueue?: ReceiveQueueLimits;
  /**
   * Vets the datagram of a peer that has no flow, before any state is made for it (a layer's
   * stateless check, e.g. DTLS's cookie exchange). False drops it (counted in `stats.refused`);
   * `reply` answers the sender from the listener's socket without a flow. True opens the flow at
   * once: its `start` and `session` events fire before `admit`'s caller goes on to hand it the
   * datagram.
   */
  admit?: (
    datagram: Buffer,
    rinfo: RemoteInfo,
    reply: (datagram: Uint8Array, to: RemoteInfo) => void,
  ) => boolean;
  /**
   * A socket already bound to use instead of binding one (`host`, `port` and the buffer sizes
   * are then ignored): a proxy's tunnel, e.g. one destination of a SOCKS5 association. The
   * listener closes it when it closes.
   */
  socket?: DatagramSocket;
  /**
   * Accept the PROXY protocol v2 from load balancers (`trusted`): each of their datagrams must
   * start with a v2 header, whose source becomes the flow's peer (the Client's `peername`), and
   * the flow's datagrams go back to the balancer that carried it, without a header. Counted in
   * `stats.proxyProtocol`. See `ProxyProtocolSocket`.
   */
  proxyProtocol?: ProxyProtocolOptions;
}

/** Counters of a listener since it started. */
export interface UdpListenerStats extends ListenerStats {
  /** Live flows now. */
  flows: number;
  /** Flows opened (first datagram of a new peer). */
  flowsOpened: number;
  datagramsIn: number;
  bytesIn: number;
  datagramsOut: number;
  bytesOut: number;
  /** Datagrams dropped: a flow's receive queue was full, or a send found the socket closed. */
  drops: number;
  /** Flows evicted at the cap. */
  evictions: number;
  /** Flows closed by the idle timeout. */
  idleTimeouts: number;
  /** Errors the socket reported (each also counted by code in `socketErrors`). */
  sendErrors: number;
  /** Datagrams of peers without a flow that `admit` refused (no flow was made). */
  refused: number;
  /**
   * Datagrams of peers without a flow dropped because their bucket of the flow table was full
   * (`BUCKET_CAP` flows already share its hash key): a hash-collision flood, never chance.
   */
  bucketFull: number;
  /**
   * Flow-table entries compared by the lookups of received datagrams: about one per datagram;
   * far more would mean peers collide in the table.
   */
  lookupProbes: number;
  /**
   * ICMP errors (port or host unreachable) that came back for datagrams sent to peers: the
   * native socket only (node:dgram never learns of them on a listening socket).
   */
  unreachable: number;
  /** What the PROXY protocol option did (null without it). */
  proxyProtocol: ProxyProtocolStats | null;
}

/** The sweep period: an eighth of the idle timeout, within 5 ms .. 1 s. */
export function tickPeriod(idleTimeout: number): number {
  return idleTimeout > 0 ? Math.min(1000, Math.max(5, Math.round(idleTimeout / 8))) : 1000;
}

/**
 * Calls `sweep` every tick of an idle timeout (an unref'd timer), and says how many ticks make
 * the timeout (0: none). For holders of datagram flows outside the listener: a proxy's SOCKS5
 * associations and transparent destinations.
 */
export function idleSweep(idleTimeout: number, sweep: () => void): { timer: NodeJS.Timeout; ticks: number } {
  const period = tickPeriod(idleTimeout);
  const timer = setInterval(sweep, period);
  timer.unref();
  return { timer, ticks: idleTimeout > 0 ? Math.ceil(idleTimeout / period) : 0 };
}

/**
 * A UDP listener: one datagram socket (native or node:dgram, see `datagramBackend`), its
 * datagrams demultiplexed into flows by the peer's address and port. Each new peer yields a
 * `UdpFlowSession` whose Client model is OPEN from its first datagram (which the session then
 * receives). Bound to a wildcard address on the native socket, a flow's `sockname` is the local
 * address its first datagram arrived on, and its datagrams go out from that address.
 *
 * Bounded state: at most `maxFlows` flows (the least recently active is evicted), an idle
 * timeout per flow (checked by one periodic sweep over a last-seen stamp, never a timer per
 * datagram), and a bounded receive queue per flow. Lookups stay O(1) under floods of chosen
 * source addresses: the table's hash is seeded per listener and its buckets are capped (see
 * `FlowTable`; refusals are counted in `stats.bucketFull`).
 */
export class UdpListener extends BaseListener<UdpFlowSession> implements FlowOwner {
  readonly #socket: DatagramSocket;
  /** The socket when it accepts the PROXY protocol (the same object as #socket), else null. */
  readonly #proxyProtocol: ProxyProtocolSocket | null;
  readonly #address: Address;
  /** Bound to a wildcard with packet info: flows learn (and answer from) their local address. */
  readonly #perFlowLocal: boolean;
  /** The local address of the datagram being received (for `admit`'s `reply`). */
  #local: string | null = null;
  #unreachable = 0;
  readonly #options: UdpListenOptions;
  readonly #table = new FlowTable<UdpFlowSession>();
  readonly #maxFlows: number;
  readonly #idleTicks: number;
  readonly #timer: NodeJS.Timeout;
  #socketOpen = true;
  #flowsOpened = 0;
  #datagramsIn = 0;
  #bytesIn = 0;
  #datagramsOut = 0;
  #bytesOut = 0;
  #drops = 0;
  #evictions = 0;
  #idleTimeouts = 0;
  #sendErrors = 0;
  #refused = 0;
  #bucketFull = 0;
  readonly #admit: UdpListenOptions['admit'];
  readonly #reply = (datagram: Uint8Array, to: RemoteInfo): void => {
    if (!this.#socketOpen) return;
    this.#datagramsOut++;
    this.#bytesOut += datagram.byteLength;
    this.#socket.send(datagram, to.port, to.address, this.#local);
  };

  private constructor(socket: DatagramSocket, options: UdpListenOptions) {
    super('udp', options.signal);
    const proxyProtocol =
      options.proxyProtocol === undefined
        ? null
        : new ProxyProtocolSocket(socket, {
            // a route outlives its flow: both are touched by each datagram, the route a tick later
            routeTimeout: options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT_MS,
            maxRoutes: options.maxFlows ?? DEFAULT_MAX_FLOWS,
            ...options.proxyProtocol,
          });
    socket = proxyProtocol ?? socket;
    this.#proxyProtocol = proxyProtocol;
    this.#socket = socket;
    this.#options = options;
    this.#admit = options.admit;
    const bound = socket.address();
    this.#address = [bound.address, bound.port];
    this.#perFlowLocal = socket.backend === 'native' && isWildcardAddress(bound.address);
    this.#maxFlows = Math.max(1, options.maxFlows ?? DEFAULT_MAX_FLOWS);
    const idleTimeout = options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT_MS;
    const period = tickPeriod(idleTimeout);
    // expire after more than idleTimeout: a flow is idle once its stamp is idleTicks + 1 behind
    this.#idleTicks = idleTimeout > 0 ? Math.ceil(idleTimeout / period) : 0;
    this.#timer = setInterval(() => this.#sweep(), period);
    this.#timer.unref();
    socket.onMessage(this.#receive);
    socket.onUnreachable(() => {
      this.#unreachable++;
    });
    socket.on('error', (err: Error) => {
      this.#sendErrors++;
      this.socketError(err);
    });
  }

  /** Binds (default 127.0.0.1, port 0; udp6 for an IPv6 host) and resolves once bound. */
  static async listen(options: UdpListenOptions = {}): Promise<UdpListener> {
    options.signal?.throwIfAborted();
    if (options.socket !== undefined) return new UdpListener(options.socket, options);
    const { address, family } = await resolveHost(options.host ?? '127.0.0.1');
    const socket = await openDatagramSocket({
      family,
      address,
      port: options.port ?? 0,
      recvBufferSize: options.recvBufferSize ?? DEFAULT_LISTENER_RECV_BUFFER,
      sendBufferSize: options.sendBufferSize,
      packetInfo: isWildcardAddress(address),
      backend: options.datagramBackend,
    });
    return new UdpListener(socket, options);
  }

  get address(): Address {
    return this.#address;
  }

  /** The listening socket, for options `dgram` offers (TTL, buffer sizes); do not read from or close it. */
  get socket(): DatagramSocket {
    return this.#socket;
  }

  /** A snapshot of the counters. */
  override get stats(): UdpListenerStats {
    return {
      ...this.listenerStats(),
      flows: this.#table.size,
      flowsOpened: this.#flowsOpened,
      datagramsIn: this.#datagramsIn,
      bytesIn: this.#bytesIn,
      datagramsOut: this.#datagramsOut,
      bytesOut: this.#bytesOut,
      drops: this.#drops,
      evictions: this.#evictions,
      idleTimeouts: this.#idleTimeouts,
      sendErrors: this.#sendErrors,
      refused: this.#refused,
      bucketFull: this.#bucketFull,
      lookupProbes: this.#table.probes,
      unreachable: this.#unreachable,
      proxyProtocol: this.#proxyProtocol === null ? null : { ...this.#proxyProtocol.proxyStats },
    };
  }

  /** Which socket the listener runs on. */
  get datagramBackend(): DatagramBackend | 'tunnel' {
    return this.#socket.backend;
  }

  /** The hot path: one lookup, a stamp, counters, and the hand-over to the flow. */
  readonly #receive = (datagram: Buffer, address: string, port: number, info: ReceiveInfo): void => {
    const flow = this.#table.find(address, port) ?? this.#vetAndOpen(datagram, address, port, info);
    if (flow === null) return;
    this.#table.touch(flow);
    this.#datagramsIn++;
    this.#bytesIn += datagram.length;
    if (!flow.datagrams.deliver(datagram)) this.#drops++;
  };

  #vetAndOpen(datagram: Buffer, address: string, port: number, info: ReceiveInfo): UdpFlowSession | null {
    // before `admit` and before evicting at the cap: a peer we cannot hold costs nothing more
    if (!this.#table.canInsert(address, port)) {
      this.#bucketFull++;
      return null;
    }
    const local = this.#perFlowLocal ? info.localAddress : null;
    if (this.#admit !== undefined && !this.closing) {
      const rinfo: RemoteInfo = {
        address,
        family: address.includes(':') ? 'IPv6' : 'IPv4',
        port,
        size: datagram.length,
      };
      this.#local = local;
      const admitted = this.#admit(datagram, rinfo, this.#reply);
      this.#local = null;
      if (!admitted) {
        this.#refused++;
        return null;
      }
    }
    return this.#open(address, port, local);
  }

  /** A new peer: make room, make its Client model and session, announce it. */
  #open(address: string, port: number, local: string | null): UdpFlowSession | null {
    if (this.closing) return null;
    if (this.#table.size >= this.#maxFlows) {
      const idlest = this.#table.idlest();
      if (idlest !== null) {
        this.#evictions++;
        idlest.destroy(new Error(`Flow evicted: the flow table is full (maxFlows ${this.#maxFlows})`));
      }
    }
    const client = new Client({
      peername: [address, port],
      sockname: local === null ? this.#address : [local, this.#address[1]],
      state: ConnectionState.OPEN,
      transportProtocol: 'udp',
      proxyMode: this.#options.proxyMode ?? 'regular',
    });
    const flow = new UdpFlowSession(this, client, address, port, this.#options.receiveQueue, local);
    // cannot fail: #vetAndOpen checked the bucket in this same turn, and eviction only frees room
    this.#table.insert(flow);
    this.#flowsOpened++;
    this.sessionStarted(flow);
    this.sessionUp(flow);
    // a `session` handler may have closed it already
    return flow.closed ? null : flow;
  }

  sendTo(datagram: Uint8Array, flow: UdpFlowSession): void {
    if (!this.#socketOpen) {
      this.#drops++;
      return;
    }
    this.#table.touch(flow);
    this.#datagramsOut++;
    this.#bytesOut += datagram.byteLength;
    this.#socket.send(datagram, flow.port, flow.address, flow.localAddress);
  }

  release(flow: UdpFlowSession): void {
    this.#table.remove(flow);
  }

  #sweep(): void {
    for (const flow of this.#table.advance(this.#idleTicks)) {
      this.#idleTimeouts++;
      void flow.close();
    }
  }

  protected stopAccepting(): Promise<void> {
    clearInterval(this.#timer);
    if (!this.#socketOpen) return Promise.resolve();
    this.#socketOpen = false;
    return this.#socket.close();
  }
}
