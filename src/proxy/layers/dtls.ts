/**
 * The DTLS layers of `reverse:dtls`: the client leg terminated by our DTLS listener, the server
 * leg dialed by our DTLS client, both models from their own handshakes, and the records relayed
 * one for one (one datagram in, one out) through the UDP layer's pump, `udp*` hooks included.
 * UDP transports are never opened before the ClientHello (mitmproxy): the server leg is dialed
 * and its handshake done inside the ClientHello hook, so the client's certificate carries the
 * upstream's names and the client leg selects the ALPN the server chose.
 */
import { isIP } from 'node:net';
import type { Client, Server } from '../../connection/index.js';
import { cipherSuiteName } from '../../handshake/ciphers.js';
import { parseDtlsServerHello } from '../../handshake/dtls/hello.js';
import type { ClientHello } from '../../handshake/tls/client-hello.js';
import { tlsVersionFromWire } from '../../handshake/versions.js';
import type { DatagramSocket } from '../../transport/datagram/index.js';
import { dtlsServerModel, upgradeDtls } from '../../transport/dtls/connect.js';
import { DtlsListener } from '../../transport/dtls/listener.js';
import type { DtlsClientHelloAnswer } from '../../transport/dtls/options.js';
import type { DtlsLayerSession } from '../../transport/dtls/session.js';
import { ConnectError, type SessionError } from '../../transport/errors.js';
import type { DatagramSession } from '../../transport/types.js';
import type { UdpSocketSession } from '../../transport/udp/connect.js';
import type { ProxyContext } from '../context.js';
import {
  type ClientHelloData,
  Flow,
  HookError,
  type TlsClientSettings,
  type TlsData,
  type TlsServerSettings,
  type UdpFlow,
} from '../hooks.js';
import type { FlowMode } from '../modes.js';
import { openUdpLeg, untilLegEnds } from './legs.js';
import { relayUntouched } from './passthrough.js';
import { closeLegs, type ModeServer } from './tcp.js';
import { alertFor, clientLegCertificate } from './tls.js';
import { DatagramPump, DEFAULT_PENDING_LIMIT } from './udp.js';

/** Datagrams of a passed-through flow read for its ServerHello at most. */
const MAX_OBSERVED_DATAGRAMS = 16;

/** TLS alert 80: what a client leg gets when the flow failed for a reason of ours. */
const INTERNAL_ERROR = 80;

/** A failure of the flow inside the ClientHello hook: the client leg is refused with it. */
class FlowRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type ClientOutcome = { kind: 'up' } | { kind: 'failed'; error: SessionError } | { kind: 'closed' };

/** One `reverse:dtls` flow, from the client's first (cookie-checked) ClientHello to the end of both legs. */
class DtlsFlow {
  readonly flow: UdpFlow;
  udp: UdpSocketSession | null = null;
  dtls: DtlsLayerSession<Server> | null = null;
  clientSettings: TlsClientSettings | null = null;
  readonly ready: Promise<boolean>;
  #markReady!: (ok: boolean) => void;
  readonly outcome: Promise<ClientOutcome>;
  settle!: (o: ClientOutcome) => void;
  #tlsBegan = false;
  /** The listener passed the flow through at its door (the filter ignores it): raw datagrams both ways. */
  passedThrough = false;
  #serverFailure: string | null = null;
  /** Records that arrive before the relay runs, held (bounded) for it. */
  #held: { datagram: Uint8Array; fromClient: boolean }[] | null = [];
  /** Where the records go once the relay runs: the UDP layer's pump, or the raw relay of a passthrough. */
  #pump: Pick<DatagramPump, 'fromClient' | 'fromServer'> | null = null;

  constructor(
    readonly ctx: ProxyContext,
    readonly mode: FlowMode,
    /** The client leg: a DTLS session, or (passed through at the door) the raw UDP flow. */
    readonly session: DatagramSession<Client>,
  ) {
    this.flow = new Flow(
      'udp',
      session.conn,
      dtlsServerModel({ host: mode.host, port: mode.port }),
    ) as UdpFlow;
    this.ready = new Promise((resolve) => {
      this.#markReady = resolve;
    });
    // a promise settles once: later reports (a close after a failure) are no-ops
    this.outcome = new Promise((resolve) => {
      this.settle = resolve;
    });
    session.once('close', () => this.settle({ kind: 'closed' }));
  }

  get client(): Client {
    return this.flow.client;
  }

  get server(): Server {
    return this.flow.server;
  }

  /** The client leg is up: its records are taken from now on (held until the relay runs). */
  up(): void {
    this.session.datagrams.on('datagram', this.#fromClient);
    this.settle({ kind: 'up' });
  }

  readonly #fromClient = (datagram: Uint8Array): void => {
    const pump = this.#pump;
    if (pump !== null) pump.fromClient(datagram);
    else this.#hold(datagram, true);
  };

  readonly #fromServer = (datagram: Uint8Array): void => {
    const pump = this.#pump;
    if (pump !== null) pump.fromServer(datagram);
    else this.#hold(datagram, false);
  };

  #hold(datagram: Uint8Array, fromClient: boolean): void {
    const held = this.#held;
    if (held !== null && held.length < DEFAULT_PENDING_LIMIT) held.push({ datagram, fromClient });
    else this.ctx.datagramCounters.queueDrops++;
  }

  #data<S extends TlsClientSettings | TlsServerSettings>(conn: Client | Server, settings: S): TlsData<S> {
    return { conn, client: this.client, server: this.server, isDtls: true, settings };
  }

  async run(): Promise<void> {
    const { ctx, mode, flow } = this;
    try {
      let ok = false;
      try {
        await ctx.bus.run('clientConnected', this.client);
        ctx.model('start', this.client, flow, mode);
        ok = true;
      } finally {
        this.#markReady(ok);
      }
      const outcome = await this.outcome;
      if (outcome.kind === 'failed') await this.#clientFailed(outcome.error);
      else if (outcome.kind === 'up' && this.passedThrough) {
        await this.#openUdp();
        await this.#passthrough();
      } else if (outcome.kind === 'up') await this.#relay();
    } catch (err) {
      ctx.failFlow(flow, err);
    }
    await closeLegs(ctx, flow, mode, this.session, this.dtls ?? this.udp);
  }

  async #clientFailed(error: SessionError): Promise<void> {
    const { ctx, flow } = this;
    const distrust = /^The client does not trust the certificate for ([\s\S]*)$/.exec(
      this.client.error ?? '',
    );
    if (distrust) this.client.error = `The client does not trust the proxy's certificate for ${distrust[1]}`;
    ctx.failFlow(flow, error);
    if (this.#tlsBegan)
      await ctx.bus.run(
        'tlsFailedClient',
        this.#data(this.client, this.clientSettings ?? ({} as TlsClientSettings)),
      );
  }

  /** Both legs are up: the UDP layer relays record for record until one leg ends. */
  async #relay(): Promise<void> {
    const { ctx, mode, flow } = this;
    const server = this.dtls;
    if (server === null) return;
    if (this.clientSettings !== null)
      await ctx.bus.run('tlsEstablishedClient', this.#data(this.client, this.clientSettings));
    ctx.model('up', this.client, flow, mode);
    await ctx.bus.run('udpStart', flow);
    const client = this.session;
    // the other leg goes too (close_notify) when one ends, and the relay is over
    const ended = untilLegEnds(ctx, client, server);
    const pump = new DatagramPump(
      ctx.bus,
      flow,
      (d) => server.transmit(d),
      (d) => client.datagrams.send(d),
      DEFAULT_PENDING_LIMIT,
      ctx.datagramCounters,
      (err) => {
        ctx.failFlow(flow, err);
        client.destroy(err instanceof Error ? err : undefined);
      },
    );
    const held = this.#held ?? [];
    this.#held = null;
    this.#pump = pump;
    for (const { datagram, fromClient } of held) (fromClient ? pump.fromClient : pump.fromServer)(datagram);
    await ended;
    flow.live = false;
    await ctx.settle(flow, ctx.bus.run(flow.error === null ? 'udpEnd' : 'udpError', flow));
  }

  /** The server leg's UDP socket, with the connect hooks. */
  async #openUdp(): Promise<UdpSocketSession> {
    const { ctx, mode, flow } = this;
    const udp = await openUdpLeg(ctx, flow, mode, ctx.options.udpTimeout, (s) => {
      this.udp = s;
    });
    if (udp === null) throw new FlowRefused('ERR_PROXY_UPSTREAM', `Upstream unavailable: ${flow.error}`);
    return udp;
  }

  /**
   * A passed-through flow, relayed untouched; the models get the version and cipher from the
   * ServerHello seen going by (DTLS sends it in the clear), and the ALPN it carries.
   */
  async #passthrough(): Promise<void> {
    const { ctx, mode, flow } = this;
    ctx.model('up', this.client, flow, mode);
    const seen: Uint8Array[] = [];
    const observe = (datagram: Uint8Array): boolean => {
      seen.push(Uint8Array.prototype.slice.call(datagram));
      const r = parseDtlsServerHello(seen);
      if (r.status === 'need-more') return seen.length >= MAX_OBSERVED_DATAGRAMS;
      if (r.status !== 'done' || r.value.helloRetryRequest) return true;
      for (const conn of [this.client, this.server]) {
        conn.tlsVersion = tlsVersionFromWire(r.value.version);
        conn.cipher = cipherSuiteName(r.value.cipherSuite);
        conn.alpn = r.value.alpn ?? '';
      }
      ctx.model('up', this.server, flow, mode);
      return true;
    };
    // the relay takes the client's datagrams from here: what came before was held
    this.session.datagrams.off('datagram', this.#fromClient);
    const held = (this.#held ?? []).map((h) => h.datagram);
    this.#held = null;
    await relayUntouched(ctx, this.session, this.udp!, held, observe);
  }

  /** The server leg, inside the ClientHello hook: UDP, then DTLS, each with its hooks. */
  async #openServer(): Promise<void> {
    const { ctx, mode, flow } = this;
    const udp = await this.#openUdp();
    const settings: TlsServerSettings = {
      servername: this.client.sni ?? (isIP(mode.host) ? undefined : mode.host),
      ALPNProtocols: [...this.client.alpnOffers],
      rejectUnauthorized: !ctx.options.insecure,
      ca: ctx.options.upstreamCa,
      minVersion: ctx.options.minVersion,
      maxVersion: ctx.options.maxVersion,
      ciphers: ctx.options.ciphers,
    };
    const data = this.#data(this.server, settings);
    await ctx.bus.run('tlsStartServer', data);
    try {
      this.dtls = await upgradeDtls(udp, {
        host: mode.host,
        port: mode.port,
        ...(settings.servername !== undefined ? { servername: settings.servername } : {}),
        ...(settings.ALPNProtocols.length > 0 ? { ALPNProtocols: settings.ALPNProtocols } : {}),
        rejectUnauthorized: settings.rejectUnauthorized,
        ...(settings.ca !== undefined ? { ca: settings.ca } : {}),
        ...(settings.minVersion !== undefined ? { minVersion: settings.minVersion } : {}),
        ...(settings.maxVersion !== undefined ? { maxVersion: settings.maxVersion } : {}),
        ...(settings.ciphers !== undefined ? { ciphers: settings.ciphers } : {}),
        ...(ctx.options.keylog !== undefined ? { keylog: ctx.options.keylog } : {}),
        // the link's MTU, when impaired: our flights are fragmented to fit it
        ...(ctx.impair?.spec.up.mtu ? { mtu: ctx.impair.spec.up.mtu } : {}),
        connectTimeout: ctx.options.connectTimeout,
      });
    } catch (err) {
      if (!(err instanceof ConnectError)) throw err;
      this.#serverFailure = err.code;
      ctx.failFlow(flow, err);
      ctx.model('error', this.server, flow, mode);
      await ctx.bus.run('tlsFailedServer', data);
      throw new FlowRefused('ERR_PROXY_UPSTREAM_TLS', `Server TLS handshake failed. ${this.server.error}`);
    }
    // its records are taken at once: they wait (bounded) for the relay
    this.dtls.datagrams.on('datagram', this.#fromServer);
    await ctx.bus.run('tlsEstablishedServer', data);
    ctx.model('up', this.server, flow, mode);
  }

  /**
   * The listener's ClientHello hook: `tlsClienthello`, the server leg, `tlsStartClient`, then the
   * client leg's certificate and ALPN. A failure answers a refusal with an alert.
   */
  async clientHello(hello: ClientHello): Promise<DtlsClientHelloAnswer> {
    const { ctx, flow } = this;
    try {
      if (!(await this.ready)) throw new FlowRefused('ERR_PROXY_FLOW', `The flow failed: ${flow.error}`);
      const data: ClientHelloData = {
        client: this.client,
        server: this.server,
        clientHello: hello,
        // flows the filter ignores were passed through at the listener's door, before any cookie
        ignoreConnection: false,
        establishServerTlsFirst: true,
      };
      this.#tlsBegan = true;
      await ctx.bus.run('tlsClienthello', data);
      if (data.ignoreConnection)
        throw new FlowRefused(
          'ERR_PROXY_UNSUPPORTED',
          'DTLS passthrough is decided before the cookie exchange (--ignore-hosts, --allow-hosts), not by tlsClienthello',
        );
      await this.#openServer();
      const { cert, key } = clientLegCertificate(ctx, this.client, this.server);
      const settings: TlsClientSettings = {
        cert,
        key,
        ALPNProtocols: this.server.alpn ? [this.server.alpn] : [],
      };
      this.clientSettings = settings;
      await ctx.bus.run('tlsStartClient', this.#data(this.client, settings));
      return { cert: settings.cert, key: settings.key, ALPNProtocols: settings.ALPNProtocols };
    } catch (err) {
      const failure = err instanceof HookError || err instanceof FlowRefused ? err : null;
      if (failure === null) throw err;
      ctx.failFlow(flow, failure);
      this.client.error ??= failure.message;
      // an alert, so the client stops retransmitting its hello: the upstream's failure, else internal_error
      const alert =
        failure.code === 'ERR_PROXY_UPSTREAM_TLS' ? alertFor(this.#serverFailure) : INTERNAL_ERROR;
      return { refuse: { code: failure.code, message: failure.message, alert } };
    }
  }
}

/**
 * Starts a `reverse:dtls` mode: our DTLS listener for the client legs, our DTLS client
 * upstream; on `socket` when given (a SOCKS5 association's destination, `mode` its flow's).
 */
export async function startDtlsMode(
  ctx: ProxyContext,
  mode: FlowMode,
  socket?: DatagramSocket,
): Promise<ModeServer> {
  const flows = new WeakMap<Client, DtlsFlow>();
  const listener = await DtlsListener.listen({
    ...(socket !== undefined ? { socket } : {}),
    host: mode.listenHost ?? ctx.options.listenHost,
    port: mode.listenPort ?? ctx.options.listenPort,
    proxyMode: mode.spec,
    certs: ctx.certs,
    idleTimeout: ctx.options.udpTimeout,
    handshakeTimeout: ctx.options.handshakeTimeout,
    // the client leg's versions and ciphers are the listener's (the engine's context), the proxy's options
    ...(ctx.options.minVersion !== undefined ? { minVersion: ctx.options.minVersion } : {}),
    ...(ctx.options.maxVersion !== undefined ? { maxVersion: ctx.options.maxVersion } : {}),
    ...(ctx.options.ciphers !== undefined ? { ciphers: ctx.options.ciphers } : {}),
    ...(ctx.options.maxFlows !== undefined ? { maxFlows: ctx.options.maxFlows } : {}),
    ...(ctx.options.keylog !== undefined ? { keylog: ctx.options.keylog } : {}),
    ...(ctx.impair?.spec.down.mtu ? { mtu: ctx.impair.spec.down.mtu } : {}),
    // balancers stand before the proxy's own listeners, not a SOCKS5 association's destinations
    ...(socket === undefined && ctx.options.proxyProtocol !== null
      ? { proxyProtocol: ctx.options.proxyProtocol }
      : {}),
    // the filter's decision needs only the first hello's SNI: made at the door, before our cookie
    ...(ctx.filter.active
      ? {
          passthrough: (hello: ClientHello) =>
            ctx.filter.ignores({ address: [mode.host, mode.port], sni: hello.sni }),
        }
      : {}),
    clientHello: (hello, client) => {
      const flow = flows.get(client);
      if (flow === undefined) throw new Error('no flow for this client');
      return flow.clientHello(hello);
    },
  });
  ctx.impair?.clientSocket(listener.socket);
  listener.on('start', (session: DatagramSession<Client>) => {
    const flow = new DtlsFlow(ctx, mode, session);
    flows.set(session.conn, flow);
    ctx.track(() => flow.run());
  });
  listener.on('passthrough', (session: DatagramSession<Client>) => {
    const flow = flows.get(session.conn);
    if (flow === undefined) return;
    flow.passedThrough = true;
    ctx.passthrough++;
  });
  listener.on('session', (session: DatagramSession<Client>) => flows.get(session.conn)?.up());
  listener.on('sessionError', (session: DatagramSession<Client>, error: SessionError) =>
    flows.get(session.conn)?.settle({ kind: 'failed', error }),
  );
  listener.on('error', (err: Error) => ctx.events.emit('error', err));
  return { mode, address: listener.address, close: () => listener.close() };
}
