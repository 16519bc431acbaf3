/**
 * SOCKS5's UDP ASSOCIATE relay (RFC 1928 section 7): one socket per association, where the
 * client sends datagrams wrapped in `RSV FRAG ATYP DST.ADDR DST.PORT DATA`. Each destination is
 * a flow of its own, carried by the UDP layer stack of the reverse modes: its first datagram
 * picks raw UDP, DTLS or QUIC (`detectDatagram`), and that mode's layers run over a
 * `Destination`, a socket whose peer is the client and whose sends go back wrapped in the
 * destination's header. So DTLS and QUIC inside SOCKS5 are intercepted or passed through as in
 * reverse mode, with the same hooks.
 *
 * Hot path, per datagram from the client: the source check, FRAG, a byte comparison with the
 * last destination's header (no parse, no string), a `subarray`, one event. Per reply: the
 * header and the data sent as two buffers of one datagram.
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import { detectDatagram } from '../../handshake/detect.js';
import { type DatagramAddress, TunnelSocket } from '../../transport/datagram/index.js';
import { DEFAULT_LISTENER_RECV_BUFFER, idleSweep } from '../../transport/udp/listener.js';
import { createUdpSocket } from '../../transport/udp/socket.js';
import type { ProxyContext } from '../context.js';
import type { FlowMode } from '../modes.js';
import {
  type DatagramHeader,
  datagramHeaderLength,
  destinationHash,
  parseDatagramHeader,
  type Socks5Address,
  Socks5Error,
  sameDestination,
} from '../socks5/wire.js';
import { DATAGRAM_LAYERS } from './datagram-layers.js';
import type { ModeServer } from './tcp.js';
import { DEFAULT_PENDING_LIMIT } from './udp.js';

/** An IPv4-mapped IPv6 address as its IPv4 form (how a dual-stack socket reports IPv4 peers). */
export const unmapped = (address: string): string =>
  address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;

/** What the associations of one SOCKS5 mode share: their count per client, and the ports of ours. */
export class AssociationRegistry {
  /** Live associations by client IP address. */
  readonly perClient = new Map<string, number>();
  /** Our ports: the mode's listener and every relay socket (a destination there is a loop). */
  readonly ports = new Set<number>();
}

const LOOPBACK = /^(127\.|0\.0\.0\.0$|::1$|::$|localhost$)/i;

/** One UDP association: its relay socket, the client's address, its destinations. */
export class Association extends EventEmitter {
  readonly #socket: Socket;
  /** The relay socket's address (what BND.ADDR and BND.PORT report unless advertised). */
  readonly local: AddressInfo;
  readonly #clientIp: string;
  /** The client's UDP address, fixed by its first datagram: replies go there. */
  #peer: RemoteInfo | null = null;
  /** Destinations by the hash of their header's address bytes (a few may share one). */
  readonly #destinations = new Map<number, Destination[]>();
  #count = 0;
  /** The destination of the last datagram: most datagrams go where the previous one went. */
  #last: Destination | null = null;
  readonly #timer: NodeJS.Timeout;
  readonly #idleTicks: number;
  #tick = 0;
  #lastSeen = 0;
  #closing: Promise<void> | null = null;

  private constructor(
    readonly ctx: ProxyContext,
    /** The spec recorded on the Clients of its flows. */
    readonly spec: string,
    readonly registry: AssociationRegistry,
    socket: Socket,
    clientIp: string,
  ) {
    super();
    this.#socket = socket;
    this.local = socket.address();
    this.#clientIp = clientIp;
    registry.ports.add(this.local.port);
    registry.perClient.set(clientIp, (registry.perClient.get(clientIp) ?? 0) + 1);
    ctx.socks5.associations++;
    ctx.socks5.liveAssociations++;
    socket.on('message', this.#receive);
    // an ICMP error of a reply's send, or the like: the association goes on
    socket.on('error', () => undefined);
    const { timer, ticks } = idleSweep(ctx.options.udpTimeout, () => this.#sweep());
    this.#timer = timer;
    this.#idleTicks = ticks;
  }

  /**
   * Binds the relay socket on `localAddress` (where the client reached the control connection),
   * port 0, with the UDP listener's socket setup. The request's DST.ADDR and DST.PORT are not
   * used: clients send 0.0.0.0:0, or (a common quirk) their first target's address, and a NAT
   * between us changes their port anyway; the client's first datagram fixes its address.
   */
  static async open(
    ctx: ProxyContext,
    spec: string,
    registry: AssociationRegistry,
    localAddress: string,
    clientIp: string,
  ): Promise<Association> {
    const host = unmapped(localAddress);
    const socket = createUdpSocket(isIP(host) === 6 ? 6 : 4, {
      recvBufferSize: DEFAULT_LISTENER_RECV_BUFFER,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: host, port: 0 }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new Association(ctx, spec, registry, socket, clientIp);
  }

  /** The client's UDP address once it sent (the peer its destinations' layers see). */
  get peer(): RemoteInfo | null {
    return this.#peer;
  }

  get destinations(): number {
    return this.#count;
  }

  /** A datagram at the relay socket: checked, unwrapped, handed to its destination. */
  readonly #receive = (msg: Buffer, rinfo: RemoteInfo): void => {
    const stats = this.ctx.socks5;
    const peer = this.#peer;
    if (peer === null) {
      // RFC 1928 section 7: only the client's address may use the association
      if (unmapped(rinfo.address) !== this.#clientIp || this.#closing !== null) {
        stats.foreignDrops++;
        return;
      }
      this.#peer = rinfo;
    } else if (rinfo.port !== peer.port || rinfo.address !== peer.address) {
      stats.foreignDrops++;
      return;
    }
    this.#lastSeen = this.#tick;
    if (msg.length < 4) {
      stats.malformedDrops++;
      return;
    }
    // no reassembly (section 7 makes it optional): fragments are dropped
    if (msg[2] !== 0) {
      stats.fragDrops++;
      return;
    }
    let destination = this.#last;
    if (destination === null || !sameDestination(msg, destination.header)) {
      destination = this.#route(msg);
      if (destination === null) return;
      this.#last = destination;
    }
    stats.datagramsFromClient++;
    destination.lastSeen = this.#tick;
    destination.deliver(msg.subarray(destination.header.length));
  };

  /**
   * The destination of a datagram whose header is not the last one's: known (a hash and a byte
   * comparison, nothing allocated), new (the header parsed and checked once), or none (dropped).
   */
  #route(msg: Buffer): Destination | null {
    const length = datagramHeaderLength(msg);
    const hash = length < 0 ? 0 : destinationHash(msg, length);
    const known = length < 0 ? undefined : this.#destinations.get(hash);
    if (known !== undefined) for (const d of known) if (sameDestination(msg, d.header)) return d;
    let header: DatagramHeader;
    try {
      header = parseDatagramHeader(msg);
    } catch (err) {
      if (!(err instanceof Socks5Error)) throw err;
      this.ctx.socks5.malformedDrops++;
      return null;
    }
    if (this.#isLoop(header.address)) {
      this.ctx.socks5.loopDrops++;
      return null;
    }
    if (this.#count >= this.ctx.options.socks5.maxDestinations) this.#evict();
    // the header as the client wrote it (FRAG 0): replies carry it, and datagrams are matched on it
    const destination = new Destination(
      this,
      hash,
      Buffer.from(msg.subarray(0, header.headerLength)),
      header.address,
    );
    const list = this.#destinations.get(hash);
    if (list === undefined) this.#destinations.set(hash, [destination]);
    else list.push(destination);
    this.#count++;
    return destination;
  }

  #all(): Destination[] {
    return [...this.#destinations.values()].flat();
  }

  /** A destination that is one of our own sockets: relaying there would feed us our own datagrams. */
  #isLoop(address: Socks5Address): boolean {
    if (!this.registry.ports.has(address.port)) return false;
    const host = unmapped(address.host);
    return LOOPBACK.test(host) || host.endsWith('.localhost') || host === unmapped(this.local.address);
  }

  #evict(): void {
    let idlest: Destination | null = null;
    for (const d of this.#all()) if (idlest === null || d.lastSeen < idlest.lastSeen) idlest = d;
    if (idlest === null) return;
    this.ctx.socks5.destinationEvictions++;
    void idlest.end();
  }

  /** A destination's datagram to the client, behind that destination's header. */
  toClient(destination: Destination, datagram: Uint8Array): void {
    const peer = this.#peer;
    if (peer === null || this.#closing !== null) return;
    this.#lastSeen = this.#tick;
    destination.lastSeen = this.#tick;
    this.ctx.socks5.datagramsToClient++;
    this.#socket.send([destination.header, datagram], peer.port, peer.address);
  }

  /** A destination closed: later datagrams there open a new one. */
  forget(destination: Destination): void {
    const list = this.#destinations.get(destination.key);
    const i = list?.indexOf(destination) ?? -1;
    if (list !== undefined && i >= 0) {
      list.splice(i, 1);
      if (list.length === 0) this.#destinations.delete(destination.key);
      this.#count--;
    }
    if (this.#last === destination) this.#last = null;
  }

  #sweep(): void {
    this.#tick++;
    const idle = this.#idleTicks;
    if (idle === 0) return;
    for (const d of this.#all()) if (this.#tick - d.lastSeen > idle) void d.end();
    // nothing either way for the UDP timeout: the association ends (its control connection with it)
    if (this.#tick - this.#lastSeen > idle && this.#closing === null) {
      clearInterval(this.#timer);
      this.emit('idle');
    }
  }

  /** Closes every destination (their flows' closing hooks run), then the relay socket. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      await Promise.all(this.#all().map((d) => d.end()));
      await new Promise<void>((resolve) => this.#socket.close(() => resolve()));
      const registry = this.registry;
      registry.ports.delete(this.local.port);
      const n = (registry.perClient.get(this.#clientIp) ?? 1) - 1;
      if (n === 0) registry.perClient.delete(this.#clientIp);
      else registry.perClient.set(this.#clientIp, n);
      this.ctx.socks5.liveAssociations--;
    })();
    return this.#closing;
  }
}

/**
 * One destination of an association, as a socket for the layers that carry its flow: its peer
 * is the client (the association's), `send` wraps a datagram in the destination's header back
 * to the client, and closing it forgets the destination. The layers start with the first
 * datagram; those that come meanwhile wait (bounded).
 */
export class Destination extends TunnelSocket {
  #server: ModeServer | null = null;
  #state: 'new' | 'starting' | 'up' | 'closed' = 'new';
  #pending: Buffer[] = [];
  #starting: Promise<void> | null = null;
  #ending: Promise<void> | null = null;
  /** The association's tick of the last datagram either way. */
  lastSeen = 0;

  constructor(
    readonly association: Association,
    /** The hash of its header's address bytes, its key in the association. */
    readonly key: number,
    /** `RSV RSV FRAG ATYP DST.ADDR DST.PORT` as the client wrote it: what replies carry. */
    readonly header: Buffer,
    readonly target: Socks5Address,
  ) {
    super(association.local.family === 'IPv6' ? 6 : 4);
  }

  address(): DatagramAddress {
    const local = this.association.local;
    return { address: local.address, family: local.family === 'IPv6' ? 'IPv6' : 'IPv4', port: local.port };
  }

  send(datagram: Uint8Array): void {
    if (this.#state !== 'closed') this.association.toClient(this, datagram);
  }

  protected closeTunnel(): void {
    this.#state = 'closed';
    this.#pending.length = 0;
    this.association.forget(this);
  }

  /** A datagram's data from the client. */
  deliver(data: Buffer): void {
    if (this.#state === 'up') {
      const peer = this.association.peer!;
      this.received(data, peer.address, peer.port);
      return;
    }
    if (this.#state === 'closed') return;
    if (this.#pending.length >= DEFAULT_PENDING_LIMIT) {
      this.association.ctx.socks5.pendingDrops++;
      return;
    }
    this.#pending.push(data);
    if (this.#state === 'new') this.#starting = this.#start(data);
  }

  /** The layers of the first datagram's kind, as the reverse mode of that scheme runs them. */
  async #start(first: Buffer): Promise<void> {
    this.#state = 'starting';
    const { ctx, spec } = this.association;
    const layer = DATAGRAM_LAYERS[detectDatagram(first)];
    const mode: FlowMode = { scheme: layer.scheme, host: this.target.host, port: this.target.port, spec };
    let server: ModeServer;
    try {
      server = await layer.start(ctx, mode, this);
    } catch {
      // the layers could not start (no DTLS engine, a bad configuration): the destination is dropped
      ctx.socks5.destinationFailures++;
      this.close();
      return;
    }
    this.#server = server;
    // closed while its layers started (the association ended, an eviction)
    if (this.closed) {
      await server.close();
      return;
    }
    this.#state = 'up';
    const pending = this.#pending;
    this.#pending = [];
    for (const d of pending) this.deliver(d);
  }

  /** Closes its layers (their flows end, with their hooks), then forgets it. */
  end(): Promise<void> {
    this.#ending ??= (async () => {
      await this.#starting;
      const server = this.#server;
      if (server !== null) await server.close();
      await this.close();
    })();
    return this.#ending;
  }
}
