/**
 * The transparent mode (Linux, CAP_NET_ADMIN): firewall rules bring other hosts' flows here and
 * each flow's server is where its client was going. One port takes both:
 *
 * - TCP: a listening socket with IP_TRANSPARENT (TPROXY: an accepted connection's local address
 *   is its original destination) that also serves REDIRECT rules (SO_ORIGINAL_DST). The stream
 *   then goes on as a SOCKS5 CONNECT does: the TLS listener reads its first bytes, TLS is
 *   intercepted or passed through by the reverse mode's rules and hooks, anything else relayed.
 * - UDP (TPROXY): a transparent socket learns each datagram's original destination
 *   (IP_ORIGDSTADDR). The first datagram to a destination opens a transparent socket bound to
 *   that address and port, over which run the layers that datagram picks (raw UDP, DTLS or
 *   QUIC), as in reverse mode, with the destination as their upstream: their replies leave from
 *   the address the client sent to. Datagrams keep arriving on the mode's socket (TPROXY hands
 *   a datagram to an unconnected socket only by the rule's port) and are handed to their
 *   destination's socket as if they had arrived there.
 *
 * Per datagram on the mode's socket: a comparison with the last datagram's destination (most
 * datagrams go where the previous one went), else a string key and a map lookup; then `inject`.
 */
import { networkInterfaces } from 'node:os';
import type { Address, Client } from '../../connection/index.js';
import { detectDatagram } from '../../handshake/detect.js';
import { type DatagramSocket, openDatagramSocket, type ReceiveInfo } from '../../transport/datagram/index.js';
import { originalDestination } from '../../transport/tcp/transparent.js';
import type { TlsSession } from '../../transport/tls/session.js';
import type { Scheme } from '../../transport/types.js';
import { DEFAULT_LISTENER_RECV_BUFFER, idleSweep } from '../../transport/udp/listener.js';
import type { ProxyContext } from '../context.js';
import type { FlowMode, TransparentMode } from '../modes.js';
import { DATAGRAM_LAYERS } from './datagram-layers.js';
import { unmapped } from './socks5-udp.js';
import type { ModeServer } from './tcp.js';
import { listenTls, TlsFlow } from './tls.js';
import { DEFAULT_PENDING_LIMIT } from './udp.js';

/** UDP destinations held at most when the proxy sets no `maxFlows`; beyond, new ones are dropped. */
const DEFAULT_MAX_DESTINATIONS = 10_000;

/** The addresses of this host's interfaces (and the wildcards): a flow to one of them on our port came to the proxy itself. */
function ownAddresses(listenHost: string): Set<string> {
  const own = new Set<string>([listenHost, '0.0.0.0', '::']);
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) own.add(a.address);
  return own;
}

/**
 * Starts a `transparent` mode: TCP and UDP on one port (the TCP listener's, when port 0 was
 * asked for). Resolves once both are bound; rejects (closing what was bound) when either cannot
 * be, e.g. without CAP_NET_ADMIN (`bind EPERM`) or without the native socket addon.
 */
export async function startTransparentMode(ctx: ProxyContext, mode: TransparentMode): Promise<ModeServer> {
  const host = mode.listenHost ?? ctx.options.listenHost;
  const tcp = await startTransparentTcp(ctx, mode, host, mode.listenPort ?? ctx.options.listenPort);
  let udp: TransparentDatagrams;
  try {
    udp = await TransparentDatagrams.open(ctx, mode, host, tcp.address[1]);
  } catch (err) {
    await tcp.close();
    throw err;
  }
  return {
    mode,
    address: tcp.address,
    close: async () => {
      await Promise.all([tcp.close(), udp.close()]);
    },
  };
}

/** Transparent TCP: the TLS listener (detecting) on a transparent socket, a TlsFlow per connection to its original destination. */
async function startTransparentTcp(
  ctx: ProxyContext,
  mode: TransparentMode,
  host: string,
  port: number,
): Promise<ModeServer> {
  const flows = new WeakMap<Client, TlsFlow>();
  /** Each connection's target: its scheme follows what the first bytes turned out to be. */
  const targets = new WeakMap<Client, { scheme: Scheme }>();
  const listener = await listenTls(ctx, { spec: mode.spec, listenHost: host, listenPort: port }, flows, {
    detect: true,
    transparent: true,
  });
  const own = ownAddresses(host);
  const stats = ctx.transparent;
  listener.on('start', (session: TlsSession<Client>) => {
    stats.connections++;
    const original = originalDestination(session.socket);
    if (original === null) {
      session.destroy();
      return;
    }
    const [address, port] = original;
    if (address !== session.conn.sockname[0] || port !== session.conn.sockname[1]) stats.redirected++;
    if (port === listener.address[1] && own.has(unmapped(address))) {
      // dialed to the proxy itself: relaying it would dial us again
      stats.selfAddressed++;
      session.conn.error = `Transparent mode: ${address}:${port} is the proxy itself (no firewall rule brought this connection)`;
      session.destroy();
      return;
    }
    const target = { scheme: 'tls' as Scheme, host: unmapped(address), port, spec: mode.spec };
    targets.set(session.conn, target);
    const flow = new TlsFlow(ctx, target, session);
    flows.set(session.conn, flow);
    ctx.track(() => flow.run());
  });
  // registered after the TLS layer's own: runs before the flow reads the outcome
  listener.on('session', (session: TlsSession<Client>) => {
    const target = targets.get(session.conn);
    if (target !== undefined && session.layer === 'plain') target.scheme = 'tcp';
  });
  return { mode, address: listener.address, close: () => listener.close() };
}

/** Transparent UDP: the mode's socket, and a destination per original address. */
class TransparentDatagrams {
  readonly #destinations = new Map<string, Destination>();
  /** The destination of the last datagram. */
  #last: Destination | null = null;
  readonly #own: Set<string>;
  readonly #max: number;
  readonly #timer: NodeJS.Timeout;
  readonly #idleTicks: number;

  private constructor(
    readonly ctx: ProxyContext,
    readonly mode: TransparentMode,
    readonly socket: DatagramSocket,
    readonly port: number,
    host: string,
  ) {
    this.#own = ownAddresses(host);
    this.#max = ctx.options.maxFlows ?? DEFAULT_MAX_DESTINATIONS;
    socket.onMessage(this.#receive);
    socket.on('error', (err: Error) => ctx.events.emit('error', err));
    const { timer, ticks } = idleSweep(ctx.options.udpTimeout, () => this.#sweep());
    this.#timer = timer;
    this.#idleTicks = ticks;
  }

  static async open(
    ctx: ProxyContext,
    mode: TransparentMode,
    host: string,
    port: number,
  ): Promise<TransparentDatagrams> {
    const socket = await openDatagramSocket({
      family: host.includes(':') ? 6 : 4,
      address: host,
      port,
      transparent: true,
      originalDestination: true,
      reuseAddr: true,
      recvBufferSize: DEFAULT_LISTENER_RECV_BUFFER,
      backend: 'native',
    });
    return new TransparentDatagrams(ctx, mode, socket, port, host);
  }

  readonly #receive = (datagram: Buffer, address: string, port: number, info: ReceiveInfo): void => {
    const last = this.#last;
    if (last !== null && info.originalPort === last.address[1] && info.originalAddress === last.original) {
      last.deliver(datagram, address, port);
      return;
    }
    const stats = this.ctx.transparent;
    const original = info.originalAddress === null ? null : unmapped(info.originalAddress);
    if (original === null) {
      stats.noDestination++;
      return;
    }
    if (info.originalPort === this.port && this.#own.has(original)) {
      stats.selfAddressed++;
      return;
    }
    const key = `${original}|${info.originalPort}`;
    let destination = this.#destinations.get(key);
    if (destination === undefined) {
      if (this.#destinations.size >= this.#max || this.ctx.shutdown.aborted) {
        stats.destinationLimitDrops++;
        return;
      }
      destination = new Destination(this, key, info.originalAddress!, [original, info.originalPort]);
      this.#destinations.set(key, destination);
      stats.destinations++;
      stats.liveDestinations++;
    }
    this.#last = destination;
    destination.deliver(datagram, address, port);
  };

  /** A destination ended: its address may be opened again. */
  forget(destination: Destination): void {
    if (this.#last === destination) this.#last = null;
    if (this.#destinations.get(destination.key) === destination) {
      this.#destinations.delete(destination.key);
      this.ctx.transparent.liveDestinations--;
    }
  }

  /** Ends destinations with no datagram either way for the UDP timeout (their flows' closing hooks run). */
  #sweep(): void {
    if (this.#idleTicks === 0) return;
    for (const destination of this.#destinations.values()) {
      if (destination.idleTick() > this.#idleTicks) void destination.end();
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.socket.close();
    await Promise.all([...this.#destinations.values()].map((d) => d.end()));
  }
}

/** One original destination: its transparent socket and the layers its first datagram picked. */
class Destination {
  #socket: DatagramSocket | null = null;
  #server: ModeServer | null = null;
  #state: 'opening' | 'up' | 'closed' = 'opening';
  #pending: { datagram: Buffer; address: string; port: number }[] = [];
  #starting: Promise<void> | null = null;
  #ending: Promise<void> | null = null;
  /** Datagrams handed to it, either way at the last sweep, and sweeps since they last changed. */
  #delivered = 0;
  readonly #ipv4: boolean;
  #lastMapped = '';
  #lastUnmapped = '';
  #seen = -1;
  #idle = 0;

  constructor(
    readonly owner: TransparentDatagrams,
    readonly key: string,
    /** The address as the mode's socket reports it (IPv4-mapped on a dual-stack socket). */
    readonly original: string,
    readonly address: Address,
  ) {
    this.#ipv4 = !address[0].includes(':');
  }

  deliver(datagram: Buffer, from: string, port: number): void {
    this.#delivered++;
    // an IPv4 client reaches a dual-stack mode socket as ::ffff:a.b.c.d; our socket is IPv4
    // (the last sender's form kept, so a flow's datagrams build no string each)
    let address = from;
    if (this.#ipv4 && from.startsWith('::ffff:')) {
      if (from !== this.#lastMapped) {
        this.#lastMapped = from;
        this.#lastUnmapped = unmapped(from);
      }
      address = this.#lastUnmapped;
    }
    if (this.#state === 'up') {
      this.#socket!.inject(datagram, address, port);
      return;
    }
    if (this.#state === 'closed') return;
    if (this.#pending.length >= DEFAULT_PENDING_LIMIT) {
      this.owner.ctx.transparent.pendingDrops++;
      return;
    }
    this.#pending.push({ datagram, address, port });
    this.#starting ??= this.#start(datagram);
  }

  /** Binds the transparent socket to the destination, starts the first datagram's layers over it, then hands them what waited. */
  async #start(first: Buffer): Promise<void> {
    const { ctx, mode } = this.owner;
    const [host, port] = this.address;
    const layer = DATAGRAM_LAYERS[detectDatagram(first)];
    const flowMode: FlowMode = { scheme: layer.scheme, host, port, spec: mode.spec };
    try {
      this.#socket = await openDatagramSocket({
        family: host.includes(':') ? 6 : 4,
        address: host,
        port,
        transparent: true,
        reuseAddr: true,
        recvBufferSize: DEFAULT_LISTENER_RECV_BUFFER,
        backend: 'native',
      });
      this.#server = await layer.start(ctx, flowMode, this.#socket);
    } catch {
      // no socket there (EADDRNOTAVAIL without the route), or the layers could not start
      ctx.transparent.destinationFailures++;
      this.#close();
      await this.#socket?.close();
      return;
    }
    // ended while it started: end() closes what it started
    if (this.#state === 'closed') return;
    this.#state = 'up';
    const pending = this.#pending;
    this.#pending = [];
    for (const p of pending) this.#socket.inject(p.datagram, p.address, p.port);
  }

  /** Sweeps since a datagram last went either way on its socket. */
  idleTick(): number {
    const socket = this.#socket;
    if (socket === null || this.#state !== 'up') return 0;
    const seen = this.#delivered + socket.stats.sent;
    if (seen !== this.#seen) {
      this.#seen = seen;
      this.#idle = 0;
    }
    return ++this.#idle;
  }

  /** Takes no more datagrams, and lets its address be opened again. */
  #close(): void {
    this.#state = 'closed';
    this.#pending = [];
    this.owner.forget(this);
  }

  /** Closes its layers (their flows end, with their hooks) and its socket, then forgets it. */
  end(): Promise<void> {
    this.#ending ??= (async () => {
      this.#close();
      await this.#starting;
      await this.#server?.close();
      await this.#socket?.close();
    })();
    return this.#ending;
  }
}
