import { EventEmitter } from 'node:events';
import { type Address, type Client, now, Server } from '../../connection/index.js';
import { detectDatagram } from '../../handshake/detect.js';
import type { DatagramSocket } from '../../transport/datagram/index.js';
import type { ReceiveQueueLimits } from '../../transport/udp/channel.js';
import { connectUdp, type UdpSocketSession } from '../../transport/udp/connect.js';
import type { UdpFlowSession } from '../../transport/udp/flow.js';
import { UdpListener, type UdpListenerStats } from '../../transport/udp/listener.js';
import {
  type ProxyProtocolOptions,
  prefixProxyHeader,
  udpProxyHeader,
} from '../../transport/udp/proxy-protocol.js';
import type { ProxyContext } from '../context.js';
import {
  type Addon,
  Flow,
  FlowMessage,
  HookBus,
  type ServerConnectionHookData,
  type UdpFlow,
} from '../hooks.js';
import type { Impairment } from '../impair/index.js';
import type { FlowMode } from '../modes.js';
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
  /**
   * Addons, called at mitmproxy's hooks for raw UDP: `clientConnected`, `udpStart`,
   * `serverConnect`, `serverConnected`, `udpMessage` per datagram (it may rewrite or drop it),
   * `udpEnd` (or `udpError`), `serverDisconnected`, `clientDisconnected`. Without any, datagrams
   * take the hot path (no hook, no promise per datagram).
   */
  addons?: readonly Addon[];
  /** @internal The proxy's bus (its counters shared across modes); replaces `addons`. */
  bus?: HookBus;
  /** @internal The proxy's impairment: the listener's socket sends `down`, each upstream socket `up`. */
  impair?: Impairment | null;
  /** Aborting closes the relay. */
  signal?: AbortSignal;
  /** A socket already bound to listen on instead of `host`, `port` (a SOCKS5 association's destination). */
  socket?: DatagramSocket;
  /**
   * Accept the PROXY protocol v2 from these balancers (see `UdpListenOptions.proxyProtocol`):
   * a flow's client is the one its datagrams' headers name.
   */
  proxyProtocol?: ProxyProtocolOptions;
  /**
   * Put a PROXY v2 header (UDP, the client's `peername` to its `sockname`) in front of every
   * datagram sent upstream, as Envoy's UDP proxy does: 28 bytes over IPv4, 52 over IPv6.
   * Replies are taken as they come (no header).
   */
  proxyProtocolUpstream?: boolean;
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
  /** Datagrams a `udpMessage` hook dropped. */
  hookDrops: number;
  /** Datagrams dropped because a flow's queue was full while its `udpMessage` hooks ran. */
  queueDrops: number;
  /** Flows a hook failed (it threw). */
  hookFailures: number;
}

/** Counters a datagram pump adds to. */
export interface PumpCounters {
  hookDrops: number;
  queueDrops: number;
}

/**
 * Moves one flow's datagrams between its legs, one for one, and runs `udpMessage` on each when
 * an addon has it: a hook sees the datagram as the flow's only message and may rewrite or drop
 * it. While hooks run, later datagrams wait in a queue of `limit` (both directions, in arrival
 * order); beyond it they are dropped and counted, as a full socket buffer would. Without the
 * hook, a datagram is counted and sent at once.
 */
export class DatagramPump {
  readonly #queue: FlowMessage[] = [];
  #running = false;
  #failed = false;
  readonly #hooked: boolean;

  constructor(
    private readonly bus: HookBus,
    private readonly flow: UdpFlow,
    private readonly toServer: (datagram: Uint8Array) => void,
    private readonly toClient: (datagram: Uint8Array) => void,
    private readonly limit: number,
    private readonly counters: PumpCounters,
    /** A hook threw: the flow must fail (the queue is cleared, nothing more is sent). */
    private readonly onFail: (err: unknown) => void,
  ) {
    this.#hooked = bus.has('udpMessage');
  }

  readonly fromClient = (datagram: Uint8Array): void => {
    const flow = this.flow;
    flow.bytesFromClient += datagram.byteLength;
    flow.messagesFromClient++;
    if (this.#hooked) this.#enqueue(datagram, true);
    else this.toServer(datagram);
  };

  readonly fromServer = (datagram: Uint8Array): void => {
    const flow = this.flow;
    flow.bytesFromServer += datagram.byteLength;
    flow.messagesFromServer++;
    if (this.#hooked) this.#enqueue(datagram, false);
    else this.toClient(datagram);
  };

  #enqueue(datagram: Uint8Array, fromClient: boolean): void {
    if (this.#failed) return;
    if (this.#queue.length >= this.limit) {
      this.counters.queueDrops++;
      return;
    }
    this.#queue.push(new FlowMessage(fromClient, datagram, now()));
    if (!this.#running) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#running = true;
    const flow = this.flow;
    for (let message = this.#queue.shift(); message !== undefined; message = this.#queue.shift()) {
      flow.message = message;
      try {
        await this.bus.run('udpMessage', flow);
      } catch (err) {
        this.#failed = true;
        this.#queue.length = 0;
        this.onFail(err);
        break;
      } finally {
        flow.message = null;
      }
      if (message.dropped) this.counters.hookDrops++;
      else (message.fromClient ? this.toServer : this.toClient)(message.content);
    }
    this.#running = false;
  }
}

/**
 * Relays raw UDP: every client flow of a listener is paired with its own connected upstream
 * socket, so replies find their client by the socket they arrive on. Per datagram: the listener's
 * flow lookup, one event, one send.
 *
 * Events, named after mitmproxy's hooks, in this order for a flow: `clientConnected` (client),
 * `serverConnect` (server, client; a handler may veto by setting `server.error`),
 * `serverConnected` (server) or `serverConnectError` (server), then `serverDisconnected` (server)
 * and `clientDisconnected` (client). Handlers run synchronously and must not throw. With
 * `addons`, the hooks of the same names run too (awaited, in mitmproxy's order, with the
 * `udp*` hooks), and a hook that throws fails its flow alone: `flowError` (`error`, `flow`).
 * `error`: the listening socket failed (as `net.Server`'s, it throws without a listener).
 */
export class UdpRelay extends EventEmitter implements AsyncDisposable {
  readonly #flows = new Set<RelayFlow>();
  readonly #classify: ClassifyDatagram;
  readonly classified: Record<DatagramClass, number> = { dtls: 0, quic: 0, raw: 0 };
  upstreamFailures = 0;
  pendingDrops = 0;
  hookFailures = 0;
  /** Counters of the datagram pumps (hooked flows). */
  readonly pumps: PumpCounters = { hookDrops: 0, queueDrops: 0 };
  /** Counts of upstream sessions already closed (live ones are summed on demand). */
  closedUpstreamOut = 0;
  closedUpstreamIn = 0;
  /** The addons' bus; null without addons (the hot path). */
  readonly bus: HookBus | null;
  #closing: Promise<void> | null = null;

  private constructor(
    readonly listener: UdpListener,
    readonly options: UdpRelayOptions,
  ) {
    super();
    this.#classify = options.classify ?? classifyByHandshake;
    this.bus =
      options.bus ?? (options.addons && options.addons.length > 0 ? new HookBus(options.addons) : null);
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
      ...(options.socket !== undefined ? { socket: options.socket } : {}),
      ...(options.proxyProtocol !== undefined ? { proxyProtocol: options.proxyProtocol } : {}),
    });
    options.impair?.clientSocket(listener.socket);
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
      hookDrops: this.pumps.hookDrops,
      queueDrops: this.pumps.queueDrops,
      hookFailures: this.hookFailures,
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
  /** With addons: the flow of the `udp*` hooks, and the pump that runs `udpMessage`. */
  readonly #flow: UdpFlow;
  #pump: DatagramPump | null = null;
  #started = false;

  constructor(
    private readonly relay: UdpRelay,
    private readonly client: UdpFlowSession,
  ) {
    this.#pendingLimit = relay.options.pendingLimit ?? DEFAULT_PENDING_LIMIT;
    const { host, port } = relay.options.upstream;
    this.#server = new Server({ address: [host, port], transportProtocol: 'udp' });
    this.#flow = new Flow('udp', client.conn, this.#server) as UdpFlow;
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
    this.#hold(datagram);
  };

  /** Upstream to client. */
  readonly fromServer = (datagram: Uint8Array): void => {
    this.client.transmit(datagram);
  };

  /** With addons, client to upstream: through the pump once the flow's opening hooks are done. */
  readonly #fromClientHooked = (datagram: Uint8Array): void => {
    const pump = this.#pump;
    if (pump !== null) pump.fromClient(datagram);
    else this.#hold(datagram);
  };

  /** A datagram that came before the upstream was ready: held (bounded) to go once it is. */
  #hold(datagram: Uint8Array): void {
    if (this.#kind === null) this.#kind = this.relay.classify(datagram);
    const pending = this.#pending;
    if (pending !== null && pending.length < this.#pendingLimit) pending.push(datagram);
    else this.relay.pendingDrops++;
  }

  start(): void {
    const { relay, client } = this;
    const bus = relay.bus;
    client.datagrams.on('datagram', bus === null ? this.fromClient : this.#fromClientHooked);
    client.once('close', () => void this.#clientClosed());
    relay.emit('clientConnected', client.conn);
    if (bus !== null) {
      this.#connecting = this.#startHooked(bus);
      return;
    }
    relay.emit('serverConnect', this.#server, client.conn);
    if (this.#server.error !== null) {
      // vetoed by a handler, as mitmproxy's server_connect hook may
      relay.upstreamFailures++;
      relay.emit('serverConnectError', this.#server);
      void client.close();
      return;
    }
    this.#connecting = this.#dial().then((upstream) => {
      if (upstream !== null) this.#connected(upstream);
    });
  }

  /** The upstream socket, or null (counted, `serverConnectError` emitted, the client closed) if it failed. */
  #dial(): Promise<UdpSocketSession | null> {
    const { relay, client } = this;
    const { host, port } = relay.options.upstream;
    return connectUdp({
      host,
      port,
      conn: this.#server,
      receiveQueue: relay.options.receiveQueue,
    }).then(
      (upstream) => {
        // the client's PROXY header first, so impairment holds prefixed datagrams
        if (relay.options.proxyProtocolUpstream)
          prefixProxyHeader(upstream.socket, udpProxyHeader(client.conn.peername, client.conn.sockname));
        relay.options.impair?.serverSocket(upstream.socket);
        return upstream;
      },
      () => {
        relay.upstreamFailures++;
        this.#pending = null;
        relay.emit('serverConnectError', this.#server);
        void client.close();
        return null;
      },
    );
  }

  /** With addons: the opening hooks in mitmproxy's order, each awaited, then the pump. */
  async #startHooked(bus: HookBus): Promise<void> {
    const { relay, client } = this;
    const flow = this.#flow;
    const data: ServerConnectionHookData = { client: client.conn, server: this.#server };
    try {
      await bus.run('clientConnected', client.conn);
      this.#started = true;
      await bus.run('udpStart', flow);
      relay.emit('serverConnect', this.#server, client.conn);
      await bus.run('serverConnect', data);
      if (this.#server.error !== null) {
        relay.upstreamFailures++;
        flow.error ??= this.#server.error;
        relay.emit('serverConnectError', this.#server);
        await bus.run('serverConnectError', data);
        void client.close();
        return;
      }
      if (client.closed) return;
      const upstream = await this.#dial();
      if (upstream === null) {
        flow.error ??= this.#server.error;
        await bus.run('serverConnectError', data);
        return;
      }
      this.#connected(upstream, false);
      await bus.run('serverConnected', data);
      if (client.closed) return;
      const pump = new DatagramPump(
        bus,
        flow,
        (d) => upstream.transmit(d),
        (d) => client.transmit(d),
        this.#pendingLimit,
        relay.pumps,
        (err) => this.#fail(err),
      );
      upstream.datagrams.on('datagram', pump.fromServer);
      const pending = this.#pending ?? [];
      this.#pending = null;
      this.#pump = pump;
      for (const datagram of pending) pump.fromClient(datagram);
    } catch (err) {
      this.#fail(err);
    }
  }

  /** A hook threw: the flow fails alone (its Client's `error`, `flowError`), both legs end. */
  #fail(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.relay.hookFailures++;
    this.#flow.error ??= message;
    this.client.conn.error ??= message;
    this.relay.emit('flowError', err, this.#flow);
    void this.upstream?.close();
    this.client.destroy(err instanceof Error ? err : new Error(message));
  }

  /** The upstream is up; without addons the pending datagrams go at once (`relay` false: the caller relays). */
  #connected(upstream: UdpSocketSession, relayNow = true): void {
    const { relay, client } = this;
    relay.emit('serverConnected', this.#server);
    upstream.once('close', () => {
      relay.closedUpstreamOut += upstream.datagrams.sent;
      relay.closedUpstreamIn += upstream.datagrams.received;
      relay.emit('serverDisconnected', this.#server);
      // the upstream is gone (an ICMP error, or we closed it): so is the flow
      void client.close();
    });
    this.upstream = upstream;
    if (client.closed) {
      void upstream.close();
      return;
    }
    if (!relayNow) return;
    const pending = this.#pending ?? [];
    this.#pending = null;
    upstream.datagrams.on('datagram', this.fromServer);
    for (const datagram of pending) upstream.transmit(datagram);
  }

  async #clientClosed(): Promise<void> {
    this.#pending = null;
    await this.#connecting;
    const upstream = this.upstream;
    if (upstream !== null) await upstream.close();
    const bus = this.relay.bus;
    if (bus !== null && this.#started) await this.#closingHooks(bus, upstream !== null);
    this.relay.emit('clientDisconnected', this.client.conn);
    this.#resolveEnded();
  }

  /** `udpEnd` (or `udpError`), `serverDisconnected` (if it was up), `clientDisconnected`: each runs even if one throws. */
  async #closingHooks(bus: HookBus, serverWasUp: boolean): Promise<void> {
    const flow = this.#flow;
    flow.live = false;
    const settle = async (step: Promise<void>): Promise<void> => {
      try {
        await step;
      } catch (err) {
        this.relay.hookFailures++;
        this.relay.emit('flowError', err, flow);
      }
    };
    await settle(bus.run(flow.error === null ? 'udpEnd' : 'udpError', flow));
    if (serverWasUp)
      await settle(bus.run('serverDisconnected', { client: this.client.conn, server: this.#server }));
    await settle(bus.run('clientDisconnected', this.client.conn));
  }
}

/**
 * Starts a `reverse:udp` mode: a relay with the proxy's addons, its flows reported as model
 * events; on `socket` when given (a SOCKS5 association's destination, `mode` its flow's).
 */
export async function startUdpMode(
  ctx: ProxyContext,
  mode: FlowMode,
  socket?: DatagramSocket,
): Promise<ModeServer> {
  const relay = await UdpRelay.start({
    socket,
    upstream: { host: mode.host, port: mode.port },
    host: mode.listenHost ?? ctx.options.listenHost,
    port: mode.listenPort ?? ctx.options.listenPort,
    idleTimeout: ctx.options.udpTimeout,
    maxFlows: ctx.options.maxFlows,
    proxyMode: mode.spec,
    bus: ctx.bus,
    impair: ctx.impair,
    ...(socket === undefined && ctx.options.proxyProtocol !== null
      ? { proxyProtocol: ctx.options.proxyProtocol }
      : {}),
    proxyProtocolUpstream: ctx.options.proxyProtocolUpstream,
  });
  const flowOf = new Map<Server, Client>();
  relay.on('clientConnected', (client: Client) => {
    ctx.flows++;
    ctx.liveFlows++;
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
  relay.on('clientDisconnected', (client: Client) => {
    ctx.liveFlows--;
    ctx.model(client.error === null ? 'closed' : 'error', client, client.id, mode);
  });
  relay.on('flowError', (err: unknown, flow: Flow) => ctx.failFlow(flow, err));
  relay.on('error', (err: Error) => ctx.events.emit('error', err));
  return { mode, address: relay.address, close: () => relay.close() };
}
