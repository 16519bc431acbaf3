import { EventEmitter } from 'node:events';
import { type Address, type Client, Server } from '../../connection/index.js';
import { detectDatagram } from '../../handshake/detect.js';
import type { ReceiveQueueLimits } from '../../transport/udp/channel.js';
import { connectUdp, type UdpSocketSession } from '../../transport/udp/connect.js';
import type { UdpFlowSession } from '../../transport/udp/flow.js';
import { UdpListener, type UdpListenerStats } from '../../transport/udp/listener.js';
import type { ProxyContext } from '../context.js';
import type { ProxyMode } from '../modes.js';
import type { ModeServer } from './tcp.js';

/** What the first datagram of a flow looks like (the handshake layer's `detectDatagram`). */
export type DatagramClass = 'dtls' | 'quic' | 'raw';
export type ClassifyDatagram = (datagram: Uint8Array) => DatagramClass;

/** Every flow is raw UDP (no detection). */
export const classifyAsRaw: ClassifyDatagram = () => 'raw';

/** The default: the handshake layer's detection (DTLS incl. 0xfeff/0x0100 records, QUIC long headers). */
export const classifyByHandshake: ClassifyDatagram = detectDatagram;

/** Datagrams a flow holds while its upstream socket connects; beyond, they are dropped. */
export const DEFAULT_PENDING_LIMIT = 64;

/** Options of `UdpRelay.start`. */
export interface UdpRelayOptions {
  /** Where every flow is relayed to. */
  upstream: { host: string; port: number };
  /** Address to listen on; default 127.0.0.1, port 0. */
  host?: string;
  port?: number;
  /** Idle timeout of a flow, ms (default 60 s, see `UdpListener`). */
  idleTimeout?: number;
  /** Flows held at most (default 10,000; the least recently active is evicted). */
  maxFlows?: number;
  receiveQueue?: ReceiveQueueLimits;
  /** Recorded as every Client's `proxyMode`; default `reverse:udp://HOST:PORT`. */
  proxyMode?: string;
  /**
   * Looks at the first datagram of each flow to pick the layer for it (mitmproxy's next-layer
   * detection); default `classifyByHandshake`. The relay does not terminate DTLS or QUIC yet:
   * such flows are passed through as UDP and counted in `stats.classified`.
   */
  classify?: ClassifyDatagram;
  /** Datagrams held per flow while its upstream connects (default 64). */
  pendingLimit?: number;
  /** Aborting closes the relay. */
  signal?: AbortSignal;
}

/** A relay's counters: its listener's, and the upstream side's. */
export interface UdpRelayStats extends UdpListenerStats {
  /** Flows by what their first datagram looked like. */
  classified: Record<DatagramClass, number>;
  /** Upstream connects that failed (or were vetoed by a `serverConnect` handler). */
  upstreamFailures: number;
  /** Datagrams dropped while a flow's upstream was connecting. */
  pendingDrops: number;
  /** Datagrams relayed to the upstream and back. */
  upstreamDatagramsOut: number;
  upstreamDatagramsIn: number;
}

/**
 * Relays raw UDP: every client flow of a listener is paired with its own connected upstream
 * socket, so replies find their client by the socket they arrive on. Per datagram: the listener's
 * flow lookup, one event, one send.
 *
 * Events, named after mitmproxy's hooks, in this order for a flow: `clientConnected` (client),
 * `serverConnect` (server, client; a handler may veto by setting `server.error`),
 * `serverConnected` (server) or `serverConnectError` (server), then `serverDisconnected` (server)
 * and `clientDisconnected` (client). Handlers run synchronously and must not throw. `error`: the
 * listening socket failed (as `net.Server`'s, it throws without a listener).
 */
export class UdpRelay extends EventEmitter implements AsyncDisposable {
  readonly #flows = new Set<RelayFlow>();
  readonly #classify: ClassifyDatagram;
  readonly classified: Record<DatagramClass, number> = { dtls: 0, quic: 0, raw: 0 };
  upstreamFailures = 0;
  pendingDrops = 0;
  /** Counts of upstream sessions already closed (live ones are summed on demand). */
  closedUpstreamOut = 0;
  closedUpstreamIn = 0;
  #closing: Promise<void> | null = null;

  private constructor(
    readonly listener: UdpListener,
    readonly options: UdpRelayOptions,
  ) {
    super();
    this.#classify = options.classify ?? classifyByHandshake;
    listener.on('session', (session: UdpFlowSession) => this.#pair(session));
    listener.once('close', () => void this.close());
    // the listening socket failed: the relay's own 'error', as the listener's (net.Server-style)
    listener.on('error', (err: Error) => this.emit('error', err));
  }

  /** Listens and starts relaying. */
  static async start(options: UdpRelayOptions): Promise<UdpRelay> {
    const { host, port } = options.upstream;
    const listener = await UdpListener.listen({
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      idleTimeout: options.idleTimeout,
      maxFlows: options.maxFlows,
      receiveQueue: options.receiveQueue,
      proxyMode: options.proxyMode ?? `reverse:udp://${host.includes(':') ? `[${host}]` : host}:${port}`,
      signal: options.signal,
    });
    return new UdpRelay(listener, options);
  }

  /** The address clients send to. */
  get address(): Address {
    return this.listener.address;
  }

  get stats(): UdpRelayStats {
    let upstreamDatagramsOut = this.closedUpstreamOut;
    let upstreamDatagramsIn = this.closedUpstreamIn;
    for (const flow of this.#flows) {
      if (flow.upstream?.closed) continue;
      upstreamDatagramsOut += flow.upstream?.datagrams.sent ?? 0;
      upstreamDatagramsIn += flow.upstream?.datagrams.received ?? 0;
    }
    return {
      ...this.listener.stats,
      classified: { ...this.classified },
      upstreamFailures: this.upstreamFailures,
      pendingDrops: this.pendingDrops,
      upstreamDatagramsOut,
      upstreamDatagramsIn,
    };
  }

  /** Live flows (client flows with their upstream). */
  get flows(): number {
    return this.#flows.size;
  }

  /** The handler's answer for a flow's first datagram. */
  classify(datagram: Uint8Array): DatagramClass {
    const kind = this.#classify(datagram);
    this.classified[kind]++;
    return kind;
  }

  /** Stops listening, closes every flow and its upstream, and resolves once all are closed. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.listener.close();
      await Promise.all([...this.#flows].map((flow) => flow.ended));
      this.emit('close');
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #pair(client: UdpFlowSession): void {
    const flow = new RelayFlow(this, client);
    this.#flows.add(flow);
    void flow.ended.then(() => this.#flows.delete(flow));
    flow.start();
  }
}

/** One client flow and its upstream socket. */
class RelayFlow {
  upstream: UdpSocketSession | null = null;
  #kind: DatagramClass | null = null;
  #pending: Uint8Array[] | null = [];
  readonly #pendingLimit: number;
  readonly #server: Server;
  #connecting: Promise<void> = Promise.resolve();
  readonly ended: Promise<void>;
  #resolveEnded!: () => void;

  constructor(
    private readonly relay: UdpRelay,
    private readonly client: UdpFlowSession,
  ) {
    this.#pendingLimit = relay.options.pendingLimit ?? DEFAULT_PENDING_LIMIT;
    const { host, port } = relay.options.upstream;
    this.#server = new Server({ address: [host, port], transportProtocol: 'udp' });
    this.ended = new Promise((resolve) => {
      this.#resolveEnded = resolve;
    });
  }

  /** Client to upstream: the hot path once the upstream is connected. */
  readonly fromClient = (datagram: Uint8Array): void => {
    const upstream = this.upstream;
    if (upstream !== null) {
      upstream.transmit(datagram);
      return;
    }
    if (this.#kind === null) this.#kind = this.relay.classify(datagram);
    const pending = this.#pending;
    if (pending !== null && pending.length < this.#pendingLimit) pending.push(datagram);
    else this.relay.pendingDrops++;
  };

  /** Upstream to client. */
  readonly fromServer = (datagram: Uint8Array): void => {
    this.client.transmit(datagram);
  };

  start(): void {
    const { relay, client } = this;
    client.datagrams.on('datagram', this.fromClient);
    client.once('close', () => void this.#clientClosed());
    relay.emit('clientConnected', client.conn);
    relay.emit('serverConnect', this.#server, client.conn);
    if (this.#server.error !== null) {
      // vetoed by a handler, as mitmproxy's server_connect hook may
      relay.upstreamFailures++;
      relay.emit('serverConnectError', this.#server);
      void client.close();
      return;
    }
    const { host, port } = relay.options.upstream;
    this.#connecting = connectUdp({
      host,
      port,
      conn: this.#server,
      receiveQueue: relay.options.receiveQueue,
    }).then(
      (upstream) => this.#connected(upstream),
      () => {
        relay.upstreamFailures++;
        this.#pending = null;
        relay.emit('serverConnectError', this.#server);
        void client.close();
      },
    );
  }

  #connected(upstream: UdpSocketSession): void {
    const { relay, client } = this;
    relay.emit('serverConnected', this.#server);
    upstream.once('close', () => {
      relay.closedUpstreamOut += upstream.datagrams.sent;
      relay.closedUpstreamIn += upstream.datagrams.received;
      relay.emit('serverDisconnected', this.#server);
      // the upstream is gone (an ICMP error, or we closed it): so is the flow
      void client.close();
    });
    const pending = this.#pending ?? [];
    this.#pending = null;
    this.upstream = upstream;
    if (client.closed) {
      void upstream.close();
      return;
    }
    upstream.datagrams.on('datagram', this.fromServer);
    for (const datagram of pending) upstream.transmit(datagram);
  }

  async #clientClosed(): Promise<void> {
    this.#pending = null;
    await this.#connecting;
    const upstream = this.upstream;
    if (upstream !== null) await upstream.close();
    this.relay.emit('clientDisconnected', this.client.conn);
    this.#resolveEnded();
  }
}

/** Starts a `reverse:udp` mode: a relay whose flows are reported as model events. */
export async function startUdpMode(ctx: ProxyContext, mode: ProxyMode): Promise<ModeServer> {
  const relay = await UdpRelay.start({
    upstream: { host: mode.host, port: mode.port },
    host: mode.listenHost ?? ctx.options.listenHost,
    port: mode.listenPort ?? ctx.options.listenPort,
    idleTimeout: ctx.options.udpTimeout,
    maxFlows: ctx.options.maxFlows,
    proxyMode: mode.spec,
  });
  const flowOf = new Map<Server, Client>();
  relay.on('clientConnected', (client: Client) => {
    ctx.model('start', client, client.id, mode);
    ctx.model('up', client, client.id, mode);
  });
  relay.on('serverConnect', (server: Server, client: Client) => {
    flowOf.set(server, client);
    ctx.model('start', server, client.id, mode);
  });
  const serverEvent = (event: 'up' | 'closed' | 'error') => (server: Server) => {
    const client = flowOf.get(server);
    if (event !== 'up') flowOf.delete(server);
    ctx.model(
      event === 'closed' && server.error !== null ? 'error' : event,
      server,
      client?.id ?? server.id,
      mode,
    );
  };
  relay.on('serverConnected', serverEvent('up'));
  relay.on('serverConnectError', serverEvent('error'));
  relay.on('serverDisconnected', serverEvent('closed'));
  relay.on('clientDisconnected', (client: Client) =>
    ctx.model(client.error === null ? 'closed' : 'error', client, client.id, mode),
  );
  relay.on('error', (err: Error) => ctx.events.emit('error', err));
  return { mode, address: relay.address, close: () => relay.close() };
}
