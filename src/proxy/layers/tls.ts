/**
 * The TLS layers of `reverse:tls`: the client leg terminated by our TLS listener, the server leg
 * dialed by our TLS client, both models filled from their own handshakes; then the TCP layer
 * relays the plaintext. With connection strategy `eager` (the default) the server leg is up
 * before the client's handshake goes on, so the client's certificate carries the upstream
 * leaf's names and the client leg selects the ALPN the server chose. A flow that
 * `--ignore-hosts`/`--allow-hosts` or a `tlsClienthello` hook ignores is relayed encrypted,
 * its models filled from the hellos seen going by.
 */
import type { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import type { Client, Server } from '../../connection/index.js';
import type { ClientHello } from '../../handshake/tls/client-hello.js';
import { ConnectError, errorCode, type SessionError } from '../../transport/errors.js';
import { connectTcp } from '../../transport/tcp/connect.js';
import type { TcpSession } from '../../transport/tcp/session.js';
import { tlsServerModel, upgradeTls } from '../../transport/tls/connect.js';
import { isDistrust, receivedAlert } from '../../transport/tls/errors.js';
import { TlsListener } from '../../transport/tls/listener.js';
import type { ClientHelloAnswer, TlsListenOptions } from '../../transport/tls/options.js';
import type { TlsSession } from '../../transport/tls/session.js';
import type { ProxyContext } from '../context.js';
import {
  type ClientHelloData,
  Flow,
  HookError,
  type TcpFlow,
  type TlsClientSettings,
  type TlsData,
  type TlsServerSettings,
} from '../hooks.js';
import type { FlowMode } from '../modes.js';
import { closeLegs, type ModeServer, runTcpLayer } from './tcp.js';

/**
 * Alerts (RFC 8446 6.2) the client leg gets when the server leg's handshake failed: the alert the
 * server sent us (by name, `receivedAlert`), or the one our own engine's refusal stands for.
 */
const RECEIVED: Record<string, number> = {
  HANDSHAKE_FAILURE: 40,
  PROTOCOL_VERSION: 70,
  INSUFFICIENT_SECURITY: 71,
  NO_APPLICATION_PROTOCOL: 120,
};
const REFUSED: Record<string, number> = {
  ERR_SSL_UNSUPPORTED_PROTOCOL: 70,
  ERR_SSL_NO_PROTOCOLS_AVAILABLE: 70,
  ERR_SSL_WRONG_SSL_VERSION: 70,
  ERR_SSL_NO_SHARED_CIPHER: 40,
};
const HANDSHAKE_FAILURE = 40;

/** The alert a client leg gets after its server leg's handshake failed with this engine code. */
export function alertFor(code: string | null): number {
  if (code === null) return HANDSHAKE_FAILURE;
  const received = receivedAlert(code);
  return (received !== null ? RECEIVED[received] : REFUSED[code]) ?? HANDSHAKE_FAILURE;
}

/** The trust for server legs: Node's roots plus the given CAs (`--upstream-ca` adds, never replaces). */
export function upstreamTrust(extra: readonly string[]): string[] | undefined {
  return extra.length === 0 ? undefined : [...rootCertificates, ...extra];
}

/**
 * mitmproxy's words for a client leg that failed its handshake (proxy/layers/tls.py): a client
 * that rejected our certificate, or one that hung up during the handshake.
 */
export function describeClientLegFailure(err: SessionError, dest: string): string {
  const cause = err.cause as { code?: string; reason?: string; message?: string } | undefined;
  const code = cause?.code ?? err.code;
  const engine = cause?.reason ? `${code}: ${cause.reason}` : (cause?.message ?? err.message);
  if (isDistrust(code)) return `The client does not trust the proxy's certificate for ${dest} (${engine})`;
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_TLS_CLOSED')
    return `The client disconnected during the handshake. If this happens consistently for ${dest}, this may indicate that the client does not trust the proxy's certificate.`;
  return err.message;
}

/** The names of a certificate: its CN, then its SANs (DNS names and IPs), and its O. */
function certificateNames(cert: X509Certificate): { names: string[]; organization?: string } {
  const names: string[] = [];
  const field = (key: string): string | undefined =>
    cert.subject
      .split('\n')
      .find((l) => l.startsWith(`${key}=`))
      ?.slice(key.length + 1);
  const cn = field('CN');
  if (cn) names.push(cn);
  for (const entry of (cert.subjectAltName ?? '').split(', ')) {
    const m = /^(DNS|IP Address):(.+)$/.exec(entry);
    if (m) names.push(m[2]!);
  }
  const organization = field('O');
  return organization === undefined ? { names } : { names, organization };
}

/** `*.example.com` matches one label under example.com; `*` matches everything. */
function domainMatches(pattern: string, name: string): boolean {
  const p = pattern.toLowerCase();
  const n = name.toLowerCase();
  if (p === '*' || p === n) return true;
  return p.startsWith('*.') && n.endsWith(p.slice(1)) && !n.slice(0, -(p.length - 1)).includes('.');
}

/**
 * The certificate for a client leg: a `--certs` one whose domain matches the SNI, else a leaf of
 * the wirelayer CA named as mitmproxy's tlsconfig does: the upstream leaf's CN and SANs (with
 * `upstreamCert`, once the server leg is up), the SNI (or the address the client reached), the
 * server's host; the first is the CN, the upstream's O is kept.
 */
export function clientLegCertificate(
  ctx: ProxyContext,
  client: Client,
  server: Server,
): { cert: string; key: string } {
  const given = client.sni ? ctx.options.certs.find((c) => domainMatches(c.domain, client.sni!)) : undefined;
  if (given !== undefined) return { cert: given.cert, key: given.key };
  const names: string[] = [];
  let organization: string | undefined;
  const upstream = server.certificateList[0];
  if (ctx.options.upstreamCert && upstream !== undefined) {
    const seen = certificateNames(upstream);
    names.push(...seen.names);
    organization = seen.organization;
  }
  names.push(client.sni ?? client.sockname[0].replace(/^::ffff:/, ''));
  if (server.address) names.push(server.address[0]);
  const leaf = ctx.leaf([...new Set(names.map((n) => n.toLowerCase()))], organization);
  return { cert: leaf.certPem, key: leaf.keyPem };
}

/**
 * A layer that ran on the client's stream before the flow's own (a SOCKS5 handshake): it ran
 * `clientConnected` at the TCP accept, and answers its client once the flow is ready for the
 * first bytes, before any is read.
 */
export interface FlowFront {
  /**
   * The flow is ready (`ok`: its eager server leg is up, or it connects lazily) or failed;
   * `connectCode` is the server leg's connect failure (ECONNREFUSED, ...), null if it did not fail
   * that way (a veto, a hook that threw).
   */
  ready(ok: boolean, connectCode: string | null): Promise<void>;
}

/** How the client leg ended up: up, failed (the listener's error), or closed without either (passthrough, or dropped). */
type ClientOutcome = { kind: 'up' } | { kind: 'failed'; error: SessionError } | { kind: 'closed' };

/**
 * One stream flow, from the TCP accept to the end of both legs: a `reverse:tls` flow, or a
 * SOCKS5 CONNECT's (behind its `front`, where plain TCP is relayed as the TCP layer).
 */
export class TlsFlow {
  readonly flow: TcpFlow;
  /** The server leg: TCP first (eager), then TLS over it. */
  tcp: TcpSession<Server> | null = null;
  tls: TlsSession<Server> | null = null;
  /**
   * Resolves once the flow is ready for the ClientHello: `clientConnected` has run and (eager)
   * the server leg's TCP connect is done; false when either failed.
   */
  readonly ready: Promise<boolean>;
  #markReady!: (ok: boolean) => void;
  passedThrough = false;
  clientSettings: TlsClientSettings | null = null;
  /** The engine's code of the server leg's failed handshake. */
  #serverFailure: string | null = null;
  /** The TLS layer began (`tlsClienthello` ran): its failures get the TLS hooks. */
  #tlsBegan = false;
  /** The code of the server leg's failed TCP connect. */
  connectCode: string | null = null;
  readonly outcome: Promise<ClientOutcome>;
  settle!: (o: ClientOutcome) => void;

  constructor(
    readonly ctx: ProxyContext,
    readonly mode: FlowMode,
    readonly session: TlsSession<Client>,
    readonly front: FlowFront | null = null,
  ) {
    const server = tlsServerModel({ host: mode.host, port: mode.port });
    // the TCP leg comes first; the TLS settings are known once the ClientHello is
    server.tls = true;
    this.flow = new Flow('tcp', session.conn, server) as TcpFlow;
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

  /** The server leg's TCP connect with its hooks; false when it failed (the flow's error set). */
  async openTcp(): Promise<boolean> {
    const { ctx, mode } = this;
    const opened = await ctx.openServer(
      this.flow,
      mode,
      () =>
        connectTcp({
          host: mode.host,
          port: mode.port,
          conn: this.server,
          connectTimeout: ctx.options.connectTimeout,
          allowHalfOpen: true,
        }).catch((err: unknown) => {
          this.connectCode = errorCode(err, 'ECONNECT');
          throw err;
        }),
      (s) => {
        this.tcp = s;
      },
    );
    return opened !== null;
  }

  /** The whole flow, run by the proxy from the TCP accept. */
  async run(): Promise<void> {
    const { ctx, mode, flow } = this;
    try {
      let ok = false;
      try {
        if (this.front === null) {
          await ctx.bus.run('clientConnected', this.client);
          ctx.model('start', this.client, flow, mode);
        }
        ok = ctx.options.connectionStrategy !== 'eager' || (await this.openTcp());
      } finally {
        this.#markReady(ok);
        // the front answers its client (which sends nothing before) while the connection stands
        await this.front?.ready(ok, this.connectCode);
      }
      // the ClientHello hook answers a refusal if it is waiting; else the client is dropped now
      if (!ok) this.session.destroy();
      const outcome = await this.outcome;
      if (outcome.kind === 'failed') await this.#clientFailed(outcome.error);
      else if (outcome.kind === 'up') await this.#clientUp();
      else if (this.passedThrough) await this.session.whenClosed();
    } catch (err) {
      ctx.failFlow(flow, err);
    }
    await closeLegs(ctx, flow, mode, this.session, this.tls ?? this.tcp);
  }

  /** The client leg's handshake is done: the server leg if still to come (lazy), then the TCP layer. */
  async #clientUp(): Promise<void> {
    const { ctx, mode, flow } = this;
    if (this.session.layer === 'plain') {
      // the listener (behind a SOCKS5 front) found no TLS: the TCP layer, as a reverse:tcp flow
      this.server.tls = false;
      ctx.model('up', this.client, flow, mode);
      if (this.tcp === null && !(await this.openTcp())) return;
      ctx.model('up', this.server, flow, mode);
      await runTcpLayer(ctx, flow, this.session.stream, this.tcp!.stream);
      return;
    }
    if (this.clientSettings !== null)
      await ctx.bus.run('tlsEstablishedClient', this.#data(this.client, this.clientSettings));
    ctx.model('up', this.client, flow, mode);
    if (this.tls === null) {
      if (this.tcp === null && !(await this.openTcp())) return;
      if (!(await this.secureServer())) return;
    }
    await runTcpLayer(ctx, flow, this.session.stream, this.tls!.stream, true);
  }

  async #clientFailed(error: SessionError): Promise<void> {
    const { ctx, flow } = this;
    const dest = this.client.sni ?? `${this.server.address![0]}:${this.server.address![1]}`;
    // our own refusal (the server leg failed) keeps its message
    if (this.client.error === error.message) this.client.error = describeClientLegFailure(error, dest);
    ctx.failFlow(flow, error);
    if (this.#tlsBegan)
      await ctx.bus.run('tlsFailedClient', this.#failedData(this.client, this.clientSettings));
  }

  #data<S extends TlsClientSettings | TlsServerSettings>(conn: Client | Server, settings: S): TlsData<S> {
    return { conn, client: this.client, server: this.server, isDtls: false, settings };
  }

  #failedData<S extends TlsClientSettings | TlsServerSettings>(
    conn: Client | Server,
    settings: S | null,
  ): TlsData<S> {
    // a handshake that failed before its settings were made: the hook sees empty ones
    return this.#data(conn, settings ?? ({} as S));
  }

  /** The server leg's TLS handshake over its TCP connection, with its hooks; false when it failed. */
  async secureServer(): Promise<boolean> {
    const { ctx, mode, flow } = this;
    const tcp = this.tcp!;
    const settings: TlsServerSettings = {
      // the client's SNI, else the mode's host (none for an IP literal)
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
      this.tls = await upgradeTls(tcp, {
        host: mode.host,
        port: mode.port,
        servername: settings.servername,
        ALPNProtocols: settings.ALPNProtocols,
        rejectUnauthorized: settings.rejectUnauthorized,
        ...(settings.ca !== undefined ? { ca: settings.ca } : {}),
        ...(settings.minVersion !== undefined ? { minVersion: settings.minVersion } : {}),
        ...(settings.maxVersion !== undefined ? { maxVersion: settings.maxVersion } : {}),
        ...(settings.ciphers !== undefined ? { ciphers: settings.ciphers } : {}),
        keylog: ctx.options.keylog,
        connectTimeout: ctx.options.connectTimeout,
        allowHalfOpen: true,
      });
    } catch (err) {
      if (!(err instanceof ConnectError)) throw err;
      this.#serverFailure = err.code;
      ctx.failFlow(flow, err);
      ctx.model('error', this.server, flow, mode);
      await ctx.bus.run('tlsFailedServer', data);
      return false;
    }
    await ctx.bus.run('tlsEstablishedServer', data);
    ctx.model('up', this.server, flow, mode);
    return true;
  }

  /**
   * The listener's ClientHello hook: the ignore check and `tlsClienthello`, then passthrough,
   * or the server leg's handshake (eager) and `tlsStartClient`, answered with the client
   * leg's certificate and settings.
   */
  async clientHello(hello: ClientHello): Promise<ClientHelloAnswer> {
    const { ctx, mode } = this;
    try {
      if (!(await this.ready)) {
        return {
          refuse: { code: 'ERR_PROXY_UPSTREAM', message: `Upstream unavailable: ${this.flow.error}` },
        };
      }
      const data: ClientHelloData = {
        client: this.client,
        server: this.server,
        clientHello: hello,
        ignoreConnection: ctx.filter.ignores({
          address: [mode.host, mode.port],
          peername: this.server.peername,
          sni: hello.sni,
        }),
        establishServerTlsFirst: ctx.options.connectionStrategy === 'eager',
      };
      this.#tlsBegan = true;
      await ctx.bus.run('tlsClienthello', data);
      if (data.ignoreConnection) {
        if (this.tcp === null && !(await this.openTcp())) {
          return {
            refuse: { code: 'ERR_PROXY_UPSTREAM', message: `Upstream unavailable: ${this.server.error}` },
          };
        }
        this.passedThrough = true;
        ctx.passthrough++;
        return { passthrough: { host: mode.host, port: mode.port, upstream: this.tcp! } };
      }
      if (data.establishServerTlsFirst) {
        if (this.tcp === null && !(await this.openTcp())) {
          return {
            refuse: { code: 'ERR_PROXY_UPSTREAM', message: `Upstream unavailable: ${this.server.error}` },
          };
        }
        if (!(await this.secureServer())) {
          return {
            refuse: {
              code: 'ERR_PROXY_UPSTREAM_TLS',
              message: `Server TLS handshake failed. ${this.server.error}`,
              alert: this.#alert(),
            },
          };
        }
      }
      const { cert, key } = clientLegCertificate(ctx, this.client, this.server);
      const settings: TlsClientSettings = {
        cert,
        key,
        // mirrored: the client leg selects what the server chose (nothing if it chose nothing)
        ALPNProtocols: this.server.alpn ? [this.server.alpn] : [],
        minVersion: ctx.options.minVersion,
        maxVersion: ctx.options.maxVersion,
        ciphers: ctx.options.ciphers,
      };
      this.clientSettings = settings;
      await ctx.bus.run('tlsStartClient', this.#data(this.client, settings));
      return {
        cert: settings.cert,
        key: settings.key,
        ALPNProtocols: settings.ALPNProtocols,
        ...(settings.minVersion !== undefined ? { minVersion: settings.minVersion } : {}),
        ...(settings.maxVersion !== undefined ? { maxVersion: settings.maxVersion } : {}),
        ...(settings.ciphers !== undefined ? { ciphers: settings.ciphers } : {}),
      };
    } catch (err) {
      if (!(err instanceof HookError)) throw err;
      this.client.error ??= err.message;
      return { refuse: { code: err.code, message: err.message } };
    }
  }

  /** The alert for the client leg after the server leg failed: the upstream's own when it sent one. */
  #alert(): number {
    return alertFor(this.#serverFailure);
  }
}

/**
 * Our TLS listener for the client legs of `flows` (its ClientHello hook is where a flow
 * decides), its events handed to the flow made for each client at `start` by the caller.
 */
export async function listenTls(
  ctx: ProxyContext,
  mode: Pick<FlowMode, 'spec' | 'listenHost' | 'listenPort'>,
  flows: WeakMap<Client, TlsFlow>,
  options: Pick<TlsListenOptions, 'detect' | 'preamble' | 'transparent' | 'fd'> = {},
): Promise<TlsListener> {
  const listener = await TlsListener.listen({
    host: mode.listenHost ?? ctx.options.listenHost,
    port: mode.listenPort ?? ctx.options.listenPort,
    proxyMode: mode.spec,
    allowHalfOpen: true,
    certs: ctx.certs,
    handshakeTimeout: ctx.options.handshakeTimeout,
    ...(ctx.options.keylog !== undefined ? { keylog: ctx.options.keylog } : {}),
    ...options,
    clientHello: (hello, client) => {
      const flow = flows.get(client);
      if (flow === undefined) throw new Error('no flow for this client');
      return flow.clientHello(hello);
    },
  });
  listener.on('session', (session: TlsSession<Client>) => flows.get(session.conn)?.settle({ kind: 'up' }));
  listener.on('sessionError', (session: TlsSession<Client>, error: SessionError) =>
    flows.get(session.conn)?.settle({ kind: 'failed', error }),
  );
  listener.on('passthrough', (session: TlsSession<Client>, server: Server) => {
    // the ServerHello went by: both models have what the wire showed
    const flow = flows.get(session.conn);
    if (flow === undefined) return;
    ctx.model('up', server, flow.flow, flow.mode);
    ctx.model('up', session.conn, flow.flow, flow.mode);
  });
  listener.on('error', (err: Error) => ctx.events.emit('error', err));
  return listener;
}

/**
 * Starts a `reverse:tls` mode: our TLS listener for the client legs, every flow's server leg
 * dialed to the mode's upstream.
 */
export async function startTlsMode(ctx: ProxyContext, mode: FlowMode, fd?: number): Promise<ModeServer> {
  const flows = new WeakMap<Client, TlsFlow>();
  const listener = await listenTls(ctx, mode, flows, fd !== undefined ? { fd } : {});
  listener.on('start', (session: TlsSession<Client>) => {
    const flow = new TlsFlow(ctx, mode, session);
    flows.set(session.conn, flow);
    ctx.track(() => flow.run());
  });
  return { mode, address: listener.address, close: () => listener.close() };
}
