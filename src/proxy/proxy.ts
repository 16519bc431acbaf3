/**
 * The intercepting proxy: one listener per mode, one flow per client, addons called at
 * mitmproxy's hooks. The layers (`layers/`) do the work; this file resolves the options, starts
 * the modes and closes them.
 */
import { EventEmitter } from 'node:events';
import { CertificateAuthority, CertStore } from '../certs/index.js';
import type { Address, Connection } from '../connection/index.js';
import type { TlsVersion } from '../connection/types.js';
import { AddressSet } from '../transport/datagram/address-set.js';
import type { DatagramSocket } from '../transport/datagram/index.js';
import type { CidGenerator } from '../transport/quic/cid.js';
import { checkQuicSecrets, type QuicSecrets } from '../transport/quic/secrets.js';
import { emptyProxyProtocolStats } from '../transport/udp/proxy-protocol.js';
import { type GivenCertificate, type LayerOptions, ProxyContext, type ProxyStats } from './context.js';
import { type Addon, HookBus } from './hooks.js';
import { Impairment } from './impair/index.js';
import {
  type ImpairSpec,
  ImpairSpecError,
  PACKET_FAULTS,
  packetFaults,
  parseImpairSpec,
} from './impair/spec.js';
import { startDtlsMode } from './layers/dtls.js';
import { HostFilter } from './layers/next-layer.js';
import { startQuicMode } from './layers/quic.js';
import { startSocks5Mode } from './layers/socks5.js';
import { type ModeServer, startTcpMode } from './layers/tcp.js';
import { startTlsMode, upstreamTrust } from './layers/tls.js';
import { startTransparentMode } from './layers/transparent.js';
import { startUdpMode } from './layers/udp.js';
import { ModeError, modeListenPort, type ProxyMode, parseMode } from './modes.js';

/** Options of `Proxy.start`. */
export interface ProxyOptions {
  /** Mode specs (`reverse:tls://example.test:443`, `reverse:udp://[::1]:53@5353`) or parsed modes. */
  modes: readonly (string | ProxyMode)[];
  /** Addons, called in this order at every hook. */
  addons?: readonly Addon[];
  /**
   * Where modes without `@HOST:PORT` listen; default 127.0.0.1, port 0 (read `proxy.listening`),
   * except `socks5`, whose port is 1080 unless given here or in its spec.
   */
  listenHost?: string;
  listenPort?: number;
  /** mitmproxy's `ignore_hosts`: flows whose server address or SNI (`host:port`) match are passed through. */
  ignoreHosts?: readonly (string | RegExp)[];
  /** mitmproxy's `allow_hosts`: flows that match none are passed through. */
  allowHosts?: readonly (string | RegExp)[];
  /** Do not verify the upstream's certificate (mitmproxy's `ssl_insecure`). */
  insecure?: boolean;
  /** CA certificates (PEM) trusted for upstreams, beside Node's roots. */
  upstreamCa?: string | Buffer | readonly (string | Buffer)[];
  /** Certificates presented to clients whose SNI matches `domain` instead of a generated leaf (`--certs`). */
  certs?: readonly GivenCertificate[];
  /** NSS key log of both legs of every flow: a file to append to, or a callback per line. */
  keylog?: string | ((line: Buffer, conn: Connection) => void);
  /**
   * `eager` (default): the server leg is up before the client's handshake goes on (upstream
   * certificate names and ALPN mirrored); `lazy`: the server is dialed once the client leg is up.
   */
  connectionStrategy?: 'eager' | 'lazy';
  /** Put the upstream leaf's CN, SANs and O in the client leg's certificate (default true, as mitmproxy). */
  upstreamCert?: boolean;
  /** Server-leg dial (connect and handshake) timeout, ms; default 10000. */
  connectTimeout?: number;
  /** Client-leg handshake timeout, ms; default 10000. */
  handshakeTimeout?: number;
  /** Idle timeout of every flow, ms (0: none, the default for stream flows). */
  idleTimeout?: number;
  /** Idle timeout of UDP and DTLS flows, ms; default `idleTimeout`, else 60000. */
  udpTimeout?: number;
  /** Idle timeout of QUIC connections (both legs), ms; default `udpTimeout`. */
  quicTimeout?: number;
  /** Flows held at most per UDP listener (default 10,000). */
  maxFlows?: number;
  /** TLS versions and ciphers (OpenSSL string) allowed on both legs. */
  minVersion?: TlsVersion;
  maxVersion?: TlsVersion;
  ciphers?: string;
  /** Where the wirelayer CA lives (default `$WIRELAYER_CONFDIR` or `~/.wirelayer`). */
  confdir?: string;
  /**
   * SOCKS5's username/password method (RFC 1929), mitmproxy's `proxyauth`: `USER:PASS` (or
   * the pair), or `any` (every client must send credentials; a `socks5Auth` hook judges them).
   * Without it, SOCKS5 clients use no authentication.
   */
  proxyAuth?: string | { username: string; password: string };
  /** Settings of `socks5` modes. */
  socks5?: Socks5Options;
  /**
   * Impair the link between the legs (`--impair`): a spec such as `loss=0.3,burst=3` or
   * `up:delay=50,down:rate=10M` (see `parseImpairSpec`), or a parsed one. Datagram modes (udp,
   * dtls, quic) have every datagram the proxy sends impaired: toward the client (`down`) on the
   * listener's socket, toward the server (`up`) on the server leg's; TCP and TLS get delay,
   * jitter, rate and blackhole on the bytes relayed between the legs (loss, reordering and the
   * rest need datagrams). Counted in `stats.impair`.
   */
  impair?: string | ImpairSpec;
  /** QUIC modes: the client leg answers every new connection with a Retry first (address validation). */
  quicRetry?: boolean;
  /**
   * The udp, dtls and quic modes' listeners sit behind load balancers that speak the PROXY
   * protocol v2 (`--proxy-protocol-from`): datagrams from `trusted` (IP literals, CIDR blocks)
   * must each start with a v2 header, whose source is the flow's client (its `peername`, what
   * hooks, filters and an upstream header see); replies go back through the balancer. Others are
   * handled as direct clients (`untrusted: 'pass'`, the default) or dropped (`'drop'`). Counted
   * in `stats.proxyProtocol`. SOCKS5 modes are not concerned.
   */
  proxyProtocol?: { trusted: readonly string[]; untrusted?: 'pass' | 'drop' };
  /**
   * Every datagram the server legs of udp, dtls and quic flows (SOCKS5 UDP included) send
   * starts with a PROXY v2 header naming the client (`--proxy-protocol-upstream`), as Envoy's
   * UDP proxy does: the upstream learns who the client is. Replies carry none.
   */
  proxyProtocolUpstream?: boolean;
  /**
   * QUIC modes: the connection IDs the client-leg listener issues (`quicLbCids(config)`: IDs a
   * QUIC-LB balancer routes to this proxy); default random.
   */
  quicCids?: CidGenerator;
  /** QUIC modes: keys shared with the other proxies behind the balancer (see `QuicListenOptions.secrets`). */
  quicSecrets?: QuicSecrets;
  /**
   * Sockets already bound to listen on, one per mode in the order of `modes`, instead of binding
   * (a worker's shares of SO_REUSEPORT groups, see `proxyWorkers`): a `DatagramSocket` for udp,
   * dtls and quic modes, a file descriptor of a bound TCP socket for tcp, tls and socks5 ones.
   */
  sockets?: readonly (DatagramSocket | number)[];
  /** Aborting closes the proxy. */
  signal?: AbortSignal;
}

/** Settings of `socks5` modes. */
export interface Socks5Options {
  /**
   * The address UDP ASSOCIATE replies give as BND.ADDR (where the client must send), for a
   * proxy behind NAT; default the relay socket's own (the address the client reached).
   */
  advertise?: string;
  /** UDP associations held at most in total (default 1024) and per client IP address (default 32); beyond, refused. */
  maxAssociations?: number;
  maxAssociationsPerClient?: number;
  /** Destinations one association holds at most (default 256); at the cap the least recently active is closed. */
  maxDestinations?: number;
}

/** One mode's listener. */
export interface ProxyListener {
  readonly mode: ProxyMode;
  /** The bound address (the real port when 0 was asked for). */
  readonly address: Address;
}

export type { ProxyStats } from './context.js';

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_ASSOCIATIONS = 1024;
const DEFAULT_MAX_ASSOCIATIONS_PER_CLIENT = 32;
const DEFAULT_MAX_DESTINATIONS = 256;

/** `USER:PASS`, `any`, or the pair, as the SOCKS5 layer takes it. */
function proxyAuth(value: ProxyOptions['proxyAuth']): LayerOptions['proxyAuth'] {
  if (value === undefined) return null;
  if (typeof value !== 'string') return value;
  if (value === 'any') return 'any';
  const colon = value.indexOf(':');
  if (colon <= 0 || colon === value.length - 1)
    throw new ModeError(`proxyAuth: USER:PASS or any, not ${JSON.stringify(value)}`);
  return { username: value.slice(0, colon), password: value.slice(colon + 1) };
}
const DEFAULT_UDP_TIMEOUT_MS = 60_000;

const pemText = (v: string | Buffer): string => (typeof v === 'string' ? v : v.toString('utf8'));

/**
 * The proxy. `Proxy.start` listens for every mode and resolves once all are bound.
 *
 * Events: `model` (`event`, `conn`, `flowId`, `mode`): a leg of a flow changed (`start`, `up`,
 * `closed`, `error`: the command line's records); `stream` (a StreamRecord: a stream flow
 * ended); `flowError` (`error`, `flow`): a flow failed, e.g. a hook threw (`code`
 * ERR_PROXY_HOOK); `error`: a listening socket failed (as `net.Server`'s, it throws without a
 * listener); `close`.
 */
// biome-ignore lint/suspicious/noShadowRestrictedNames: the API the issue names (`Proxy.start`); modules that need the global import it renamed
export class Proxy extends EventEmitter implements AsyncDisposable {
  readonly #servers: { mode: ProxyMode; server: ModeServer }[] = [];
  readonly #ctx: ProxyContext;
  #closing: Promise<void> | null = null;

  private constructor(ctx: ProxyContext) {
    super();
    this.#ctx = ctx;
  }

  /** Starts a listener for every mode; rejects (closing those started) if one cannot. */
  static async start(options: ProxyOptions): Promise<Proxy> {
    options.signal?.throwIfAborted();
    if (options.modes.length === 0) throw new ModeError('no mode given');
    // every mode gets its port here: a socks5 mode's default (1080) is not the proxy's (0)
    const modes = options.modes
      .map((m) => (typeof m === 'string' ? parseMode(m) : m))
      .map((m) => ({ ...m, listenPort: modeListenPort(m, options.listenPort) }));
    const extraCa = options.upstreamCa === undefined ? [] : [options.upstreamCa].flat().map(pemText);
    const idle = options.idleTimeout ?? 0;
    const udpTimeout = options.udpTimeout ?? (idle > 0 ? idle : DEFAULT_UDP_TIMEOUT_MS);
    const layerOptions: LayerOptions = {
      listenHost: options.listenHost ?? '127.0.0.1',
      listenPort: options.listenPort ?? 0,
      insecure: options.insecure ?? false,
      upstreamCa: upstreamTrust(extraCa),
      keylog: options.keylog,
      connectionStrategy: options.connectionStrategy ?? 'eager',
      upstreamCert: options.upstreamCert ?? true,
      certs: options.certs ?? [],
      connectTimeout: options.connectTimeout ?? DEFAULT_TIMEOUT_MS,
      handshakeTimeout: options.handshakeTimeout ?? DEFAULT_TIMEOUT_MS,
      idleTimeout: idle,
      udpTimeout,
      quicTimeout: options.quicTimeout ?? udpTimeout,
      maxFlows: options.maxFlows,
      minVersion: options.minVersion,
      maxVersion: options.maxVersion,
      ciphers: options.ciphers,
      confdir: options.confdir,
      proxyAuth: proxyAuth(options.proxyAuth),
      socks5: {
        advertise: options.socks5?.advertise ?? null,
        maxAssociations: options.socks5?.maxAssociations ?? DEFAULT_MAX_ASSOCIATIONS,
        maxAssociationsPerClient:
          options.socks5?.maxAssociationsPerClient ?? DEFAULT_MAX_ASSOCIATIONS_PER_CLIENT,
        maxDestinations: options.socks5?.maxDestinations ?? DEFAULT_MAX_DESTINATIONS,
      },
      quicRetry: options.quicRetry ?? false,
      proxyProtocol:
        options.proxyProtocol === undefined
          ? null
          : {
              // parsed once here: a bad entry fails the start, and every mode shares the set and its cache
              trusted: new AddressSet(options.proxyProtocol.trusted),
              untrusted: options.proxyProtocol.untrusted ?? 'pass',
              stats: emptyProxyProtocolStats(),
            },
      proxyProtocolUpstream: options.proxyProtocolUpstream ?? false,
      quicCids: options.quicCids,
      quicSecrets: options.quicSecrets,
    };
    if (options.quicSecrets !== undefined) checkQuicSecrets(options.quicSecrets);
    const impair = options.impair === undefined ? null : impairment(options.impair, modes);
    // SOCKS5 and transparent flows may be TLS, DTLS or QUIC: they need the CA too
    const needsCa = modes.some(
      (m) => m.kind !== 'reverse' || m.scheme === 'tls' || m.scheme === 'dtls' || m.scheme === 'quic',
    );
    const certs = needsCa
      ? new CertStore(await CertificateAuthority.open(options.confdir))
      : new CertStore(CertificateAuthority.create());
    const events = new EventEmitter();
    const ctx = new ProxyContext(
      layerOptions,
      new HookBus(options.addons ?? []),
      new HostFilter({ ignoreHosts: options.ignoreHosts, allowHosts: options.allowHosts }),
      certs,
      events,
    );
    ctx.impair = impair;
    const proxy = new Proxy(ctx);
    for (const event of ['model', 'stream', 'flowError', 'error']) {
      events.on(event, (...args: unknown[]) => proxy.emit(event, ...args));
    }
    const sockets = options.sockets;
    if (sockets !== undefined && sockets.length !== modes.length)
      throw new ModeError(`sockets: one per mode (${modes.length}), not ${sockets.length}`);
    try {
      for (const [i, mode] of modes.entries())
        proxy.#servers.push({ mode, server: await startMode(ctx, mode, sockets?.[i]) });
    } catch (err) {
      await proxy.close();
      throw err;
    }
    if (options.signal) {
      if (options.signal.aborted) void proxy.close();
      else options.signal.addEventListener('abort', () => void proxy.close(), { once: true });
    }
    return proxy;
  }

  /** Every mode's listener, in the order the modes were given. */
  get listening(): readonly ProxyListener[] {
    return this.#servers.map((s) => ({ mode: s.mode, address: s.server.address }));
  }

  /** A snapshot of the counters. */
  get stats(): ProxyStats {
    return this.#ctx.stats;
  }

  /** Stops every listener, closes every flow (their closing hooks run), resolves once all are done. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#ctx.stop();
      await Promise.all(this.#servers.map((s) => s.server.close()));
      await this.#ctx.settled();
      this.#ctx.impair?.close();
      this.emit('close');
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** The impairment of a spec, refused when it asks for packet faults and no mode carries datagrams. */
function impairment(given: string | ImpairSpec, modes: readonly ProxyMode[]): Impairment {
  const spec = typeof given === 'string' ? parseImpairSpec(given) : given;
  const faults = packetFaults(spec);
  // SOCKS5 carries UDP associations: packet faults apply to them
  if (
    faults.length > 0 &&
    modes.every((m) => m.kind === 'reverse' && (m.scheme === 'tcp' || m.scheme === 'tls'))
  )
    throw new ImpairSpecError(
      faults[0]!,
      `${faults.join(', ')} need${faults.length === 1 ? 's' : ''} a packet layer (udp, dtls or quic modes): tcp and tls take delay, jitter, rate, queue and blackhole, not ${PACKET_FAULTS.join('/')}`,
    );
  return new Impairment(spec);
}

/** A mode's listener, on `bound` when given: a datagram socket for udp, dtls and quic, a TCP fd for the others. */
function startMode(ctx: ProxyContext, mode: ProxyMode, bound?: DatagramSocket | number): Promise<ModeServer> {
  const fd = typeof bound === 'number' ? bound : undefined;
  const socket = typeof bound === 'object' ? bound : undefined;
  const datagram =
    mode.kind === 'reverse' && (mode.scheme === 'udp' || mode.scheme === 'dtls' || mode.scheme === 'quic');
  if (bound !== undefined && datagram !== (socket !== undefined))
    throw new ModeError(
      `${mode.spec}: needs a ${datagram ? 'datagram socket' : 'TCP socket (fd)'} to listen on`,
    );
  if (mode.kind === 'transparent') {
    // TCP and UDP on one port, each bound by the mode itself (IP_TRANSPARENT)
    if (bound !== undefined) throw new ModeError(`${mode.spec}: a transparent mode binds its own sockets`);
    return startTransparentMode(ctx, mode);
  }
  if (mode.kind === 'socks5') return startSocks5Mode(ctx, mode, fd);
  switch (mode.scheme) {
    case 'tcp':
      return startTcpMode(ctx, mode, fd);
    case 'tls':
      return startTlsMode(ctx, mode, fd);
    case 'udp':
      return startUdpMode(ctx, mode, socket);
    case 'dtls':
      return startDtlsMode(ctx, mode, socket);
    case 'quic':
      return startQuicMode(ctx, mode, socket);
  }
}
