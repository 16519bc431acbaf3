/**
 * The QUIC layers of `reverse:quic`: the client leg terminated by our QUIC listener, the server
 * leg dialed by our QUIC client (inside the listener's ClientHello hook, so the client's
 * certificate carries the upstream's names and the client leg selects the ALPN the server
 * chose), and then stream for stream: every stream one leg opens opens one of the same kind on
 * the other (IDs allocated per leg, initiator and direction kept), each relayed as a TCP-layer
 * flow (`tcp*` hooks, its IDs in `metadata`), FIN and reset codes mirrored; DATAGRAM frames one
 * for one through the UDP layer's pump (`udp*` hooks); a CONNECTION_CLOSE mirrored to the other
 * leg. Flow control is QUIC's own on both legs: a slow reader withholds credit from the other side.
 * The client's NAT rebinding and migration are followed by the listener (routed by connection ID).
 */
import { isIP } from 'node:net';
import { type Client, ConnectionState, type Server } from '../../connection/index.js';
import type { ClientHello } from '../../handshake/tls/client-hello.js';
import type { DatagramSocket } from '../../transport/datagram/index.js';
import { ConnectError, type SessionError } from '../../transport/errors.js';
import { connectQuic, quicServerModel } from '../../transport/quic/connect.js';
import {
  type QuicClientHelloAnswer,
  QuicListener,
  type QuicPassthroughStart,
} from '../../transport/quic/listener.js';
import type { QuicSession } from '../../transport/quic/session.js';
import type { QuicStream } from '../../transport/quic/stream.js';
import type { UdpSocketSession } from '../../transport/udp/connect.js';
import type { UdpFlowSession } from '../../transport/udp/flow.js';
import type { ProxyContext } from '../context.js';
import {
  type ClientHelloData,
  Flow,
  HookError,
  type TcpFlow,
  type TlsClientSettings,
  type TlsData,
  type TlsServerSettings,
  type UdpFlow,
} from '../hooks.js';
import type { FlowMode } from '../modes.js';
import { openUdpLeg, untilLegEnds } from './legs.js';
import { relayUntouched } from './passthrough.js';
import { closeLegs, type ModeServer, runTcpLayer } from './tcp.js';
import { alertFor, clientLegCertificate } from './tls.js';
import { DatagramPump, DEFAULT_PENDING_LIMIT } from './udp.js';

type ClientOutcome =
  | { kind: 'up'; session: QuicSession<Client> }
  | { kind: 'passthrough'; raw: UdpFlowSession; start: QuicPassthroughStart }
  | { kind: 'failed'; error: SessionError }
  | { kind: 'closed' };

/** Streams the server leg opened before the client leg was up: they wait, unread (QUIC flow control holds the rest). */
const MAX_EARLY_STREAMS = 64;

/** One `reverse:quic` connection, from the client's ClientHello to the end of both legs. */
class QuicFlow {
  readonly flow: Flow;
  server: QuicSession<Server> | null = null;
  /** The raw server leg of a passed-through connection. */
  raw: UdpSocketSession | null = null;
  session: QuicSession<Client> | null = null;
  clientSettings: TlsClientSettings | null = null;
  readonly outcome: Promise<ClientOutcome>;
  settle!: (o: ClientOutcome) => void;
  #tlsBegan = false;
  /** Streams opened before the relay runs (its `tlsEstablishedClient` first), by leg: they wait, unread. */
  #early: QuicStream[] | null = [];
  #earlyClient: QuicStream[] | null = [];
  #streamFlows = new Set<Promise<void>>();
  #datagrams: DatagramPump | null = null;
  #datagramFlow: UdpFlow | null = null;

  constructor(
    readonly ctx: ProxyContext,
    readonly mode: FlowMode,
    client: Client,
  ) {
    this.flow = new Flow('tcp', client, quicServerModel({ host: mode.host, port: mode.port }));
    // a promise settles once: later reports (a close after a failure) are no-ops
    this.outcome = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  get client(): Client {
    return this.flow.client;
  }

  #data<S extends TlsClientSettings | TlsServerSettings>(conn: Client | Server, settings: S): TlsData<S> {
    return { conn, client: this.client, server: this.flow.server, isDtls: false, settings };
  }

  /** The listener's hook: the whole opening of the flow, up to the client leg's certificate. */
  async clientHello(hello: ClientHello): Promise<QuicClientHelloAnswer> {
    const { ctx, mode, flow } = this;
    try {
      await ctx.bus.run('clientConnected', this.client);
      ctx.model('start', this.client, flow, mode);
      const data: ClientHelloData = {
        client: this.client,
        server: flow.server,
        clientHello: hello,
        ignoreConnection: ctx.filter.ignores({ address: [mode.host, mode.port], sni: hello.sni }),
        establishServerTlsFirst: true,
      };
      this.#tlsBegan = true;
      await ctx.bus.run('tlsClienthello', data);
      if (data.ignoreConnection) return { passthrough: true };
      if (!(await this.#openServer())) return this.#upstreamRefusal();
      const { cert, key } = clientLegCertificate(ctx, this.client, flow.server);
      const settings: TlsClientSettings = {
        cert,
        key,
        ALPNProtocols: flow.server.alpn ? [flow.server.alpn] : [],
      };
      this.clientSettings = settings;
      await ctx.bus.run('quicStartClient', this.#data(this.client, settings));
      return { cert: settings.cert, key: settings.key, ALPNProtocols: settings.ALPNProtocols };
    } catch (err) {
      if (!(err instanceof HookError)) throw err;
      ctx.failFlow(flow, err);
      return this.#refuse();
    }
  }

  /** The client is refused (CONNECTION_CLOSE, CONNECTION_REFUSED): no session will exist. */
  #refuse(): false {
    this.client.state = ConnectionState.CLOSED;
    this.client.timestampEnd ??= this.client.timestampStart;
    this.settle({ kind: 'closed' });
    return false;
  }

  /**
   * The client's refusal after the server leg failed: CRYPTO_ERROR handshake_failure when the
   * upstream's handshake failed (the TLS layer's alert), CONNECTION_REFUSED when it never answered.
   */
  #upstreamRefusal(): QuicClientHelloAnswer {
    const server = this.flow.server;
    return server.peername === null
      ? { refuse: { code: 'ERR_PROXY_UPSTREAM', message: `Upstream unavailable: ${server.error}` } }
      : {
          refuse: {
            code: 'ERR_PROXY_UPSTREAM_TLS',
            message: `Server TLS handshake failed. ${server.error}`,
            alert: alertFor(null),
          },
        };
  }

  /** The server leg, with its hooks: false when it failed (the flow's error set). */
  async #openServer(): Promise<boolean> {
    const { ctx, mode, flow } = this;
    const server = flow.server;
    const hookData = { client: this.client, server };
    await ctx.bus.run('serverConnect', hookData);
    ctx.model('start', server, flow, mode);
    if (server.error !== null) {
      ctx.failFlow(flow, new ConnectError('ERR_PROXY_VETO', server.error, server));
      ctx.model('error', server, flow, mode);
      await ctx.bus.run('serverConnectError', hookData);
      return false;
    }
    const settings: TlsServerSettings = {
      servername: this.client.sni ?? (isIP(mode.host) ? undefined : mode.host),
      ALPNProtocols: [...this.client.alpnOffers],
      rejectUnauthorized: !ctx.options.insecure,
      ca: ctx.options.upstreamCa,
    };
    const data = this.#data(server, settings);
    await ctx.bus.run('quicStartServer', data);
    try {
      this.server = await connectQuic({
        host: mode.host,
        port: mode.port,
        conn: server,
        ...(settings.servername !== undefined ? { servername: settings.servername } : {}),
        ...(settings.ALPNProtocols.length > 0 ? { ALPNProtocols: settings.ALPNProtocols } : {}),
        rejectUnauthorized: settings.rejectUnauthorized,
        ...(settings.ca !== undefined ? { ca: settings.ca } : {}),
        ...(ctx.options.keylog !== undefined ? { keylog: ctx.options.keylog } : {}),
        ...(ctx.options.quicTimeout > 0 ? { idleTimeout: ctx.options.quicTimeout } : {}),
        ...(ctx.impair !== null ? { onSocket: (s: DatagramSocket) => ctx.impair?.serverSocket(s) } : {}),
        connectTimeout: ctx.options.connectTimeout,
      });
    } catch (err) {
      if (!(err instanceof ConnectError)) throw err;
      ctx.failFlow(flow, err);
      ctx.model('error', server, flow, mode);
      // a handshake that failed is a TLS failure; a path that never answered, a connect failure
      await ctx.bus.run(
        server.peername === null ? 'serverConnectError' : 'tlsFailedServer',
        server.peername === null ? hookData : data,
      );
      return false;
    }
    // what the server opens before the client leg is up waits here, unread; streams it opened
    // with the end of its handshake were announced before the connect resolved: take them too
    for (const stream of this.server.streams.values()) if (!stream.local) this.#fromServerStream(stream);
    this.server.on('stream', this.#fromServerStream);
    this.server.datagrams.on('datagram', this.#fromServerDatagram);
    await ctx.bus.run('serverConnected', hookData);
    await ctx.bus.run('tlsEstablishedServer', data);
    ctx.model('up', server, flow, mode);
    return true;
  }

  readonly #fromServerStream = (stream: QuicStream): void => {
    const early = this.#early;
    if (early !== null) {
      if (early.length < MAX_EARLY_STREAMS) early.push(stream);
      else stream.destroy();
      return;
    }
    const session = this.session;
    if (session === null || session.closed) {
      stream.destroy();
      return;
    }
    this.#relay(session.openStream({ bidirectional: stream.bidirectional }), stream);
  };

  readonly #fromClientStream = (stream: QuicStream): void => {
    const early = this.#earlyClient;
    if (early !== null) {
      if (early.length < MAX_EARLY_STREAMS) early.push(stream);
      else stream.destroy();
      return;
    }
    const server = this.server;
    if (server === null || server.closed) {
      stream.destroy();
      return;
    }
    this.#relay(stream, server.openStream({ bidirectional: stream.bidirectional }));
  };

  readonly #fromClientDatagram = (d: Uint8Array): void => this.#pump().fromClient(d);
  readonly #fromServerDatagram = (d: Uint8Array): void => {
    // before the client leg is up there is nobody to give it to: unreliable, dropped and counted
    if (this.session === null) this.ctx.datagramCounters.queueDrops++;
    else this.#pump().fromServer(d);
  };

  /** The DATAGRAM frames' flow and pump, made with the first frame (`udpStart` runs then, not awaited by the frame). */
  #pump(): DatagramPump {
    if (this.#datagrams !== null) return this.#datagrams;
    const { ctx } = this;
    const flow = new Flow('udp', this.client, this.flow.server) as UdpFlow;
    const send = (session: QuicSession<Client> | QuicSession<Server> | null) => (d: Uint8Array) => {
      try {
        session?.datagrams.send(d);
      } catch {
        // too large for the peer, or the session is gone: unreliable, so dropped and counted
        ctx.datagramCounters.queueDrops++;
      }
    };
    const pump = new DatagramPump(
      ctx.bus,
      flow,
      send(this.server),
      send(this.session),
      DEFAULT_PENDING_LIMIT,
      ctx.datagramCounters,
      (err) => ctx.failFlow(flow, err),
    );
    this.#datagrams = pump;
    this.#datagramFlow = flow;
    void ctx.settle(flow, ctx.bus.run('udpStart', flow));
    return pump;
  }

  /** One stream pair, relayed as its own TCP-layer flow with both IDs in `metadata`. */
  #relay(clientStream: QuicStream, serverStream: QuicStream): void {
    const { ctx } = this;
    const flow = new Flow('tcp', this.client, this.flow.server) as TcpFlow;
    flow.metadata.quicStreamIdClient = clientStream.id;
    flow.metadata.quicStreamIdServer = serverStream.id;
    const done = runTcpLayer(ctx, flow, clientStream, serverStream);
    this.#streamFlows.add(done);
    void done.then(() => this.#streamFlows.delete(done));
  }

  /** The client leg is up: streams and frames flow both ways until a leg closes. */
  async #up(session: QuicSession<Client>): Promise<void> {
    const { ctx, mode, flow } = this;
    const server = this.server!;
    if (this.clientSettings !== null)
      await ctx.bus.run('tlsEstablishedClient', this.#data(this.client, this.clientSettings));
    ctx.model('up', this.client, flow, mode);
    const early = this.#early ?? [];
    const earlyClient = this.#earlyClient ?? [];
    this.#early = null;
    this.#earlyClient = null;
    for (const stream of earlyClient) this.#fromClientStream(stream);
    for (const stream of early) this.#fromServerStream(stream);
    // mirror an application's CONNECTION_CLOSE (code and reason) to the other leg
    await untilLegEnds(ctx, session, server, () => {
      const mirrored = (from: QuicSession<Client> | QuicSession<Server>) => {
        const e = from.engine.peerError();
        return e?.isApp
          ? { code: e.errorCode, reason: Buffer.from(e.reason).toString() }
          : { code: 0, reason: '' };
      };
      const c = session.closed ? mirrored(session) : mirrored(server);
      void server.close(c.code, c.reason);
      void session.close(c.code, c.reason);
    });
    await Promise.all([...this.#streamFlows]);
    const udpFlow = this.#datagramFlow;
    if (udpFlow !== null) {
      udpFlow.live = false;
      await ctx.settle(udpFlow, ctx.bus.run(udpFlow.error === null ? 'udpEnd' : 'udpError', udpFlow));
    }
  }

  /** Called by the listener's `session` event, synchronously: streams and frames are taken from the first. */
  up(session: QuicSession<Client>): void {
    this.session = session;
    session.on('stream', this.#fromClientStream);
    session.datagrams.on('datagram', this.#fromClientDatagram);
    this.settle({ kind: 'up', session });
  }

  /** The listener passed the connection through (the hook's answer): its raw flow and what it held. */
  passedThrough(raw: UdpFlowSession, start: QuicPassthroughStart): void {
    this.ctx.passthrough++;
    this.settle({ kind: 'passthrough', raw, start });
  }

  /**
   * A passed-through connection: a raw UDP server leg, the datagrams relayed untouched. The
   * models get what the Initials show anyone on the path: the version, and the cipher of the
   * ServerHello (ALPN and certificates travel encrypted in Handshake packets: not known).
   */
  async #passthrough(raw: UdpFlowSession, start: QuicPassthroughStart): Promise<void> {
    const { ctx, mode, flow } = this;
    const server = flow.server;
    ctx.model('up', this.client, flow, mode);
    const udp = await openUdpLeg(ctx, flow, mode, ctx.options.quicTimeout, (s) => {
      this.raw = s;
    });
    if (udp === null) return;
    // the server leg is a UDP socket, but its model is of the QUIC connection going through it
    server.tlsVersion = this.client.tlsVersion;
    server.sni = this.client.sni;
    server.alpnOffers = [...this.client.alpnOffers];
    const { observer } = start;
    const observe = (d: Uint8Array): boolean => {
      observer.observe(d, 'server');
      if (observer.cipher === null) return observer.done;
      this.client.cipher = server.cipher = observer.cipher;
      ctx.model('up', server, flow, mode);
      return true;
    };
    await relayUntouched(ctx, raw, udp, start.datagrams, observe);
  }

  async run(): Promise<void> {
    const { ctx, mode, flow } = this;
    try {
      const outcome = await this.outcome;
      if (outcome.kind === 'up') await this.#up(outcome.session);
      else if (outcome.kind === 'passthrough') {
        // a hook that throws on the way fails the flow; the raw legs are closed either way
        try {
          await this.#passthrough(outcome.raw, outcome.start);
        } catch (err) {
          ctx.failFlow(flow, err);
        }
        await closeLegs(ctx, flow, mode, outcome.raw, this.raw);
        return;
      } else if (outcome.kind === 'failed') {
        ctx.failFlow(flow, outcome.error);
        if (this.#tlsBegan)
          await ctx.bus.run(
            'tlsFailedClient',
            this.#data(this.client, this.clientSettings ?? ({} as TlsClientSettings)),
          );
      }
    } catch (err) {
      ctx.failFlow(flow, err);
    }
    if (this.session !== null) {
      await closeLegs(ctx, flow, mode, this.session, this.server);
      return;
    }
    // refused, or failed before a session existed: only the server leg may be left
    if (this.server !== null) {
      await this.server.close();
      ctx.model(flow.server.error === null ? 'closed' : 'error', flow.server, flow, mode);
      await ctx.settle(flow, ctx.bus.run('serverDisconnected', { client: this.client, server: flow.server }));
    }
    ctx.model('error', this.client, flow, mode);
    await ctx.settle(flow, ctx.bus.run('clientDisconnected', this.client));
  }
}

/**
 * Starts a `reverse:quic` mode: our QUIC listener for the client legs, our QUIC client
 * upstream; on `socket` when given (a SOCKS5 association's destination, `mode` its flow's).
 */
export async function startQuicMode(
  ctx: ProxyContext,
  mode: FlowMode,
  socket?: DatagramSocket,
): Promise<ModeServer> {
  const flows = new WeakMap<Client, QuicFlow>();
  const listener = await QuicListener.listen({
    ...(socket !== undefined ? { socket } : {}),
    host: mode.listenHost ?? ctx.options.listenHost,
    port: mode.listenPort ?? ctx.options.listenPort,
    proxyMode: mode.spec,
    certs: ctx.certs,
    ...(ctx.options.quicTimeout > 0 ? { idleTimeout: ctx.options.quicTimeout } : {}),
    ...(ctx.options.keylog !== undefined ? { keylog: ctx.options.keylog } : {}),
    ...(ctx.options.quicRetry ? { limits: { retryThreshold: 0 } } : {}),
    ...(ctx.options.quicCids !== null ? { cids: ctx.options.quicCids } : {}),
    clientHello: (hello, client) => {
      const flow = new QuicFlow(ctx, mode, client);
      flows.set(client, flow);
      ctx.track(() => flow.run());
      return flow.clientHello(hello);
    },
  });
  ctx.impair?.clientSocket(listener.endpoint.socket);
  listener.on('session', (session: QuicSession<Client>) => flows.get(session.conn)?.up(session));
  listener.on('passthrough', (raw: UdpFlowSession, start: QuicPassthroughStart) =>
    flows.get(raw.conn)?.passedThrough(raw, start),
  );
  listener.on('sessionError', (session: QuicSession<Client>, error: SessionError) => {
    const flow = flows.get(session.conn);
    if (flow === undefined) return;
    flow.session = session;
    flow.settle({ kind: 'failed', error });
  });
  listener.on('error', (err: Error) => ctx.events.emit('error', err));
  return { mode, address: listener.address, close: () => listener.close() };
}
