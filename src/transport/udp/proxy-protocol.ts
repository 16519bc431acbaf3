/**
 * The PROXY protocol v2 over UDP, both ways (as Envoy's UDP proxy and its listener filter):
 *
 * - `ProxyProtocolSocket` accepts it: a `DatagramSocket` over another whose datagrams from
 *   trusted senders (the load balancers) each start with a v2 header. The header is stripped and
 *   its source becomes the sender the driver above sees, so the UDP, DTLS and QUIC drivers run
 *   over it unchanged: a Client's `peername` is the real client's, two clients behind one
 *   balancer are two flows (or two QUIC paths), and what the driver sends to such a client goes
 *   to the balancer that last carried it, without a header (its route).
 * - `prefixProxyHeader` sends it: every datagram a socket sends gets one header in front (the
 *   proxy's server legs, with the client's address).
 *
 * A header is believed only from a trusted sender. Without the option there is no wrapper, so a
 * socket that does not use it pays nothing.
 */
import { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
import type { Address } from '../../connection/index.js';
import { AddressSet } from '../datagram/address-set.js';
import type {
  DatagramAddress,
  DatagramHandler,
  DatagramSocket,
  DatagramSocketStats,
  ReceiveInfo,
  UnreachableHandler,
} from '../datagram/index.js';
import { encodeProxyHeader, ProxyHeaderReader } from '../datagram/proxy-v2.js';
import { NO_RECEIVE_INFO } from '../datagram/socket.js';
import { type FlowEntry, FlowTable } from './flow-table.js';

/** Accepting the PROXY protocol v2 on a listener (`proxyProtocol` of the UDP, DTLS and QUIC listeners). */
export interface ProxyProtocolOptions {
  /**
   * The senders whose datagrams carry a v2 header (the balancers): IP literals and CIDR blocks
   * (`10.0.0.0/8`, `2001:db8::/32`; IPv4 blocks also match IPv4-mapped IPv6 senders). Every
   * datagram from them must start with a header; one without, or with a malformed one, is
   * dropped and counted.
   */
  trusted: readonly string[] | AddressSet;
  /**
   * Datagrams from other senders: `pass` (the default) as they are, from their real address
   * (direct clients; a header in them is payload, never believed), or `drop` (counted; replies
   * then go only to clients with a route or to the balancers themselves).
   */
  untrusted?: 'pass' | 'drop';
  /**
   * Routes (client address from a header -> balancer) held at most (default 10,000); at the cap
   * the least recently active one is forgotten (counted in `evictions`).
   */
  maxRoutes?: number;
  /**
   * Forget a route idle this long, ms (0: only at the cap). Listeners set it to their flows'
   * idle timeout: a route lives at least as long as its flow, both touched by each datagram.
   */
  routeTimeout?: number;
  /** @internal Counters to add to instead of the socket's own (the proxy shares one set across modes). */
  stats?: ProxyProtocolStats;
}

/** What a `ProxyProtocolSocket` did with the datagrams it received (and the replies it routed). */
export interface ProxyProtocolStats {
  /** Datagrams with a PROXY header (UDP over IPv4 or IPv6): delivered as from the header's source. */
  proxied: number;
  /** Datagrams with a LOCAL header (the balancer's own, e.g. a health check): delivered as from the balancer. */
  local: number;
  /** Datagrams from a trusted sender without the v2 signature: dropped. */
  missing: number;
  /** Datagrams whose header did not parse (truncated, bad version, command, family, length or TLV): dropped. */
  malformed: number;
  /** PROXY headers for anything but UDP over IPv4/IPv6 (TCP, UNIX, UNSPEC): dropped. */
  unsupported: number;
  /** Datagrams from senders not trusted: delivered as they are, or dropped with `untrusted: 'drop'`. */
  untrusted: number;
  /** Routes forgotten at the cap (`maxRoutes`). */
  evictions: number;
  /** Headers dropped because their source's bucket of the route table was full (a collision flood). */
  refused: number;
  /** Sends to a client with no route dropped (with `untrusted: 'drop'`, where no direct client exists). */
  unrouted: number;
}

/** Counters all zero. */
export function emptyProxyProtocolStats(): ProxyProtocolStats {
  return {
    proxied: 0,
    local: 0,
    missing: 0,
    malformed: 0,
    unsupported: 0,
    untrusted: 0,
    evictions: 0,
    refused: 0,
    unrouted: 0,
  };
}

/** Routes held at most by default: the UDP listener's flow cap. */
export const DEFAULT_MAX_ROUTES = 10_000;
/** The route table's clock: one tick a second (expiry is coarse; the cap is what bounds memory). */
const TICK_MS = 1000;
/** Family/transport bytes of UDP over IPv4 and IPv6: what a datagram's header may proxy. */
const DGRAM_INET = 0x12;
const DGRAM_INET6 = 0x22;

/** A client seen in a header, and the balancer that carries it. */
class Route implements FlowEntry {
  lastSeen = 0;
  nextInBucket: FlowEntry | null = null;
  older: FlowEntry | null = null;
  newer: FlowEntry | null = null;
  constructor(
    readonly address: string,
    readonly port: number,
    public viaAddress: string,
    public viaPort: number,
  ) {}
}

/**
 * A `DatagramSocket` that accepts the PROXY protocol v2 over another (see the file comment).
 * Per datagram from a balancer: a cached trust check, the header's decode (no allocation but the
 * payload's view), one route lookup; per reply, one route lookup.
 */
export class ProxyProtocolSocket extends EventEmitter implements DatagramSocket {
  readonly #inner: DatagramSocket;
  readonly #trusted: AddressSet;
  readonly #dropUntrusted: boolean;
  readonly #reader = new ProxyHeaderReader();
  readonly #routes = new FlowTable<Route>();
  readonly #maxRoutes: number;
  readonly #idleTicks: number;
  readonly #timer: NodeJS.Timeout;
  #handler: DatagramHandler | null = null;
  /** The counters (shared with others when the options gave some). */
  readonly proxyStats: ProxyProtocolStats;

  constructor(inner: DatagramSocket, options: ProxyProtocolOptions) {
    super();
    this.#inner = inner;
    this.#trusted = options.trusted instanceof AddressSet ? options.trusted : new AddressSet(options.trusted);
    this.#dropUntrusted = options.untrusted === 'drop';
    this.#maxRoutes = Math.max(1, options.maxRoutes ?? DEFAULT_MAX_ROUTES);
    const timeout = options.routeTimeout ?? 0;
    this.#idleTicks = timeout > 0 ? Math.ceil(timeout / TICK_MS) : 0;
    this.proxyStats = options.stats ?? emptyProxyProtocolStats();
    this.#timer = setInterval(() => this.#sweep(), TICK_MS);
    this.#timer.unref();
    inner.onMessage(this.#receive);
    inner.on('error', (err: Error) => this.emit('error', err));
    inner.once('close', () => {
      clearInterval(this.#timer);
      this.emit('close');
    });
  }

  get backend(): DatagramSocket['backend'] {
    return this.#inner.backend;
  }
  get family(): 4 | 6 {
    return this.#inner.family;
  }
  get connected(): boolean {
    return this.#inner.connected;
  }
  get closed(): boolean {
    return this.#inner.closed;
  }
  /** The socket's own counters (what arrived with the headers still on). */
  get stats(): DatagramSocketStats {
    return this.#inner.stats;
  }
  /** The socket underneath. */
  get inner(): DatagramSocket {
    return this.#inner;
  }
  /** The trusted senders. */
  get trusted(): AddressSet {
    return this.#trusted;
  }
  /** Live routes: clients seen in headers. */
  get routes(): number {
    return this.#routes.size;
  }

  /** The balancer that last carried `address`:`port`, or null (a direct peer, or forgotten). */
  routeOf(address: string, port: number): { address: string; port: number } | null {
    const route = this.#routes.find(address, port);
    return route === undefined ? null : { address: route.viaAddress, port: route.viaPort };
  }

  readonly #receive = (datagram: Buffer, address: string, port: number, info: ReceiveInfo): void => {
    const stats = this.proxyStats;
    if (!this.#trusted.has(address)) {
      stats.untrusted++;
      if (!this.#dropUntrusted) this.#handler?.(datagram, address, port, info);
      return;
    }
    const reader = this.#reader;
    if (!reader.read(datagram)) {
      if (reader.error === 'ERR_PROXY_HEADER_SIGNATURE') stats.missing++;
      else stats.malformed++;
      return;
    }
    const payload = datagram.subarray(reader.length);
    if (reader.command === 0) {
      // LOCAL: the balancer's own datagram; the addresses (if any) are to be ignored
      stats.local++;
      this.#handler?.(payload, address, port, info);
      return;
    }
    const familyTransport = reader.familyTransport;
    if (familyTransport !== DGRAM_INET && familyTransport !== DGRAM_INET6) {
      stats.unsupported++;
      return;
    }
    const source = reader.source;
    const sourcePort = reader.sourcePort;
    if (!this.#route(source, sourcePort, address, port)) return;
    stats.proxied++;
    this.#handler?.(payload, source, sourcePort, info);
  };

  /** Records that `address`:`port` came through the balancer `via`:`viaPort`; false if it cannot be held. */
  #route(address: string, port: number, via: string, viaPort: number): boolean {
    const routes = this.#routes;
    const route = routes.find(address, port);
    if (route !== undefined) {
      if (route.viaPort !== viaPort || route.viaAddress !== via) {
        // the client now comes through another balancer (or port): replies follow it
        route.viaAddress = via;
        route.viaPort = viaPort;
      }
      routes.touch(route);
      return true;
    }
    if (!routes.canInsert(address, port)) {
      this.proxyStats.refused++;
      return false;
    }
    if (routes.size >= this.#maxRoutes) {
      const idlest = routes.idlest();
      if (idlest !== null) {
        routes.remove(idlest);
        this.proxyStats.evictions++;
      }
    }
    routes.insert(new Route(address, port, via, viaPort));
    return true;
  }

  #sweep(): void {
    for (const route of this.#routes.advance(this.#idleTicks)) this.#routes.remove(route);
  }

  onMessage(handler: DatagramHandler | null): void {
    this.#handler = handler;
  }

  /** Taken as if received: a datagram from a trusted sender must carry its header. */
  inject(datagram: Buffer, address: string, port: number): void {
    this.#receive(datagram, address, port, NO_RECEIVE_INFO);
  }

  /** ICMP errors name the address the datagram went to: for a routed client, its balancer's. */
  onUnreachable(handler: UnreachableHandler | null): void {
    this.#inner.onUnreachable(handler);
  }

  /** To a client seen in a header: to its balancer, without a header. Else as addressed. */
  send(datagram: Uint8Array, port?: number, address?: string, from?: string | null): void {
    if (port !== undefined && address !== undefined) {
      const route = this.#routes.find(address, port);
      if (route !== undefined) {
        this.#routes.touch(route);
        this.#inner.send(datagram, route.viaPort, route.viaAddress, from);
        return;
      }
      if (this.#dropUntrusted && !this.#trusted.has(address)) {
        this.proxyStats.unrouted++;
        return;
      }
    }
    this.#inner.send(datagram, port, address, from);
  }

  flush(): void {
    this.#inner.flush();
  }
  address(): DatagramAddress {
    return this.#inner.address();
  }
  remoteAddress(): DatagramAddress {
    return this.#inner.remoteAddress();
  }
  setRecvBufferSize(size: number): void {
    this.#inner.setRecvBufferSize(size);
  }
  setSendBufferSize(size: number): void {
    this.#inner.setSendBufferSize(size);
  }
  getRecvBufferSize(): number {
    return this.#inner.getRecvBufferSize();
  }
  getSendBufferSize(): number {
    return this.#inner.getSendBufferSize();
  }
  ref(): this {
    this.#inner.ref();
    return this;
  }
  unref(): this {
    this.#inner.unref();
    return this;
  }

  close(): Promise<void> {
    clearInterval(this.#timer);
    this.#handler = null;
    return this.#inner.close();
  }
}

/** `::ffff:a.b.c.d` as `a.b.c.d`; anything else as it is. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/**
 * The v2 header (PROXY, UDP) of a datagram from `source` to `destination`: UDP over IPv4 when
 * both are IPv4 (or IPv4-mapped), else UDP over IPv6 with an IPv4 one mapped (`::ffff:a.b.c.d`).
 */
export function udpProxyHeader(source: Address, destination: Address): Buffer {
  let [from, to] = [unmapped(source[0]), unmapped(destination[0])];
  const v4 = isIPv4(from) && isIPv4(to);
  if (!v4) {
    if (isIPv4(from)) from = `::ffff:${from}`;
    if (isIPv4(to)) to = `::ffff:${to}`;
  }
  return encodeProxyHeader({
    command: 'proxy',
    addresses: {
      family: v4 ? 'inet' : 'inet6',
      transport: 'dgram',
      source: from,
      sourcePort: source[1],
      destination: to,
      destinationPort: destination[1],
    },
  });
}

/** Room for the largest UDP payload behind the largest header a prefix carries here. */
const SCRATCH_BYTES = 65_535 + 64;
/** Where prefixed datagrams are built for sockets that copy at once: one for all (sends do not nest). */
let scratch: Buffer | null = null;

/**
 * Makes every datagram `socket` sends start with `header` (a PROXY v2 header: the server legs
 * of a proxy, each with its client's address). What the socket receives is untouched: replies
 * carry no header. The native socket copies a datagram as `send` is called, so for it the
 * prefixed copy is built in one buffer shared by all; node:dgram, tunnels and a `send` another
 * seam already replaced (impairment, which may hold datagrams) get a buffer per datagram. Wrap
 * before such seams to keep the shared one.
 */
export function prefixProxyHeader(socket: DatagramSocket, header: Uint8Array): void {
  const original = socket.send;
  const headerLength = header.byteLength;
  const copiesAtOnce = socket.backend === 'native' && !Object.hasOwn(socket, 'send');
  const send = (datagram: Uint8Array, port?: number, address?: string, from?: string | null): void => {
    const total = headerLength + datagram.byteLength;
    let out: Buffer;
    if (copiesAtOnce && total <= SCRATCH_BYTES) {
      scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES);
      scratch.set(header, 0);
      scratch.set(datagram, headerLength);
      out = scratch.subarray(0, total);
    } else {
      out = Buffer.allocUnsafe(total);
      out.set(header, 0);
      out.set(datagram, headerLength);
    }
    original.call(socket, out, port, address, from);
  };
  Object.defineProperty(socket, 'send', { value: send, configurable: true, writable: true });
}
