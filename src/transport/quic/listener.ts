/**
 * The server side of QUIC: a listener over one endpoint. A datagram no session claims is
 * looked at before any state is made: a version quiche does not speak gets a Version
 * Negotiation, a new Initial is decrypted (handshake layer) until its ClientHello is whole,
 * so SNI and ALPN offers are known before `accept` and the certificate can be chosen per SNI
 * (the `clientHello` hook). Limits bound sessions, half-open handshakes and connection IDs; past a
 * threshold of half-open handshakes, clients must prove their address with a Retry token.
 * Under an Initial flood (new Initials faster than `initialRateThreshold`), every Initial
 * without a valid token gets a Retry made from its header alone, tokens are checked by HMAC
 * before anything is decrypted, and decryptions and Retries are bounded per second.
 * A connection the hook passes through (`{ passthrough: true }`) gets no session: its datagrams,
 * those held while the hook ran first, go by 4-tuple to a raw UDP flow (`passthrough` event).
 * Behind a load balancer: the IDs come from a `CidGenerator` (QUIC-LB), and `secrets` share the
 * Retry token key and the stateless reset key with the other instances; given the reset key, a
 * short-header datagram for an ID of ours that no session holds is answered with a Stateless Reset.
 */
import type { RemoteInfo } from 'node:dgram';
import { CertificateAuthority, CertStore } from '../../certs/index.js';
import { type Address, Client, ConnectionState } from '../../connection/index.js';
import { isSupportedVersion, parsePacketHeader } from '../../handshake/quic/index.js';
import type { ClientHello } from '../../handshake/tls/client-hello.js';
import { quicVersionFromWire } from '../../handshake/versions.js';
import type { DatagramBackend, DatagramSocket } from '../datagram/index.js';
import { describeHookFailure, ERR_CLIENT_HELLO_HOOK } from '../errors.js';
import { BaseListener } from '../listener.js';
import type { ClientHelloRefusal } from '../tls/options.js';
import type { ListenerStats, ListenOptions } from '../types.js';
import { type FlowOwner, UdpFlowSession } from '../udp/flow.js';
import { FlowTable } from '../udp/flow-table.js';
import {
  type ProxyProtocolOptions,
  ProxyProtocolSocket,
  type ProxyProtocolStats,
} from '../udp/proxy-protocol.js';
import { RateMeter, TokenBucket } from './admission.js';
import { type HostPort, type QuicheConnection, quiche } from './binding.js';
import { type CidGenerator, CidTable, RANDOM_CIDS } from './cid.js';
import {
  DEFAULT_ALPN,
  DEFAULT_IDLE_TIMEOUT_MS,
  type EngineSettings,
  type QuicIdentity,
  ServerConfigCache,
} from './config.js';
import { type EndpointStats, QuicEndpoint } from './endpoint.js';
import { QuicErrorCode } from './errors.js';
import { InitialObserver } from './observer.js';
import { connectionCloseInitial } from './refuse.js';
import { StatelessResets } from './reset.js';
import { RETRY_TOKEN_LIFETIME_MS, RetryTokens } from './retry.js';
import { checkQuicSecrets, type QuicSecrets } from './secrets.js';
import { QuicSession } from './session.js';

/** Bounds that keep a listener's memory and work finite whatever its peers send. */
export interface QuicLimits {
  /** Live sessions at most; further Initials are dropped. */
  maxSessions: number;
  /** Half-open handshakes (ClientHello pending or handshake running) at most. */
  maxHandshakes: number;
  /** From this many half-open handshakes on, a new client must answer a Retry (0: always; Infinity: never). */
  retryThreshold: number;
  /** Connection IDs we issue (and route) per session. */
  maxCidsPerSession: number;
  /** A ClientHello must be whole, and the handshake done, within this many milliseconds. */
  handshakeTimeoutMs: number;
  /** Initial datagrams kept per half-open handshake while its ClientHello arrives. */
  maxPendingDatagrams: number;
  /**
   * New connections' Initials per second (a sliding 100 ms window) from which every one
   * without a valid token gets a stateless Retry, read from its header alone: no key
   * derivation, no decryption; for a second after the rate was last over it (Infinity: never).
   */
  initialRateThreshold: number;
  /**
   * New connections' Initials decrypted per second at most (a token bucket holding a quarter
   * second's worth); beyond it, an Initial without a token gets a Retry and one with a valid
   * token is dropped (its client sends it again).
   */
  maxDecryptsPerSecond: number;
  /**
   * Retries sent per second at most (a token bucket holding a quarter second's worth): each
   * costs a send, the largest cost of a flood's datagram; beyond it, Initials that would get
   * one are dropped and counted (`loadDrops`).
   */
  maxRetriesPerSecond: number;
  /**
   * Stateless Resets sent per second at most (a token bucket holding a quarter second's
   * worth); beyond it, datagrams that would get one are counted (`resetsLimited`).
   */
  maxResetsPerSecond: number;
}

export const DEFAULT_LIMITS: QuicLimits = {
  maxSessions: 4096,
  maxHandshakes: 512,
  retryThreshold: 64,
  maxCidsPerSession: 4,
  handshakeTimeoutMs: 10_000,
  maxPendingDatagrams: 8,
  initialRateThreshold: 1000,
  maxDecryptsPerSecond: 2000,
  maxRetriesPerSecond: 30_000,
  maxResetsPerSecond: 1000,
};

/** What the QUIC hook learns beside the ClientHello and the Client model. */
export interface QuicHelloInfo {
  /** The QUIC version of the client's Initial. */
  readonly version: number;
}

/** The `clientHello` answer that passes a connection through untouched (a proxy's ignored flow). */
export interface QuicPassthroughAnswer {
  readonly passthrough: true;
}

/**
 * What the `passthrough` event hands over beside the raw flow: the datagrams that arrived while
 * the hook ran (the client's Initials, not delivered on the flow), and the observer that parsed
 * them, to be fed the server's datagrams for the ServerHello's cipher.
 */
export interface QuicPassthroughStart {
  readonly datagrams: readonly Buffer[];
  readonly observer: InitialObserver;
}

/**
 * The answer of `clientHello` (as the TLS listener's): the certificate to present (`cert`,
 * `key` as PEM) and optionally the ALPN protocols this connection selects from instead of the
 * listener's (a proxy mirroring its upstream's choice), nothing (the listener's default),
 * `false` to refuse the connection (CONNECTION_CLOSE with CONNECTION_REFUSED, sent statelessly),
 * `{ refuse }` to refuse it with a code and message (the `sessionError`) and, given an `alert`,
 * CRYPTO_ERROR for that TLS alert (RFC 9001, 4.8) instead, or `{ passthrough: true }` to relay it untouched (see `QuicListener`'s `passthrough` event).
 */
export type QuicClientHelloAnswer =
  | (QuicIdentity & { ALPNProtocols?: readonly string[] })
  | QuicPassthroughAnswer
  | { refuse: ClientHelloRefusal }
  | false
  | null
  | undefined
  // biome-ignore lint/suspicious/noConfusingVoidType: a hook that decides nothing may just return
  | void;

/**
 * Called once per connection with the parsed ClientHello (whole, however many Initials it
 * took), after `client.sni` and `client.alpnOffers` were filled from it and before `accept`:
 * the certificate can be chosen per SNI. Byte fields of `hello` are views valid during the call.
 */
export type QuicClientHelloHook = (
  hello: ClientHello,
  client: Client,
  info: QuicHelloInfo,
) => QuicClientHelloAnswer | Promise<QuicClientHelloAnswer>;

/** Options of `quic.listen`. */
export interface QuicListenOptions extends ListenOptions {
  /** See QuicClientHelloHook (named and answered as the TLS listener's hook). */
  clientHello?: QuicClientHelloHook;
  limits?: Partial<QuicLimits>;
  /**
   * Makes the connection IDs the listener issues (Retry's, each session's first and spares);
   * default random, CID_LENGTH bytes. `quicLbCids(config)` makes IDs a QUIC-LB balancer routes.
   */
  cids?: CidGenerator;
  /**
   * Keys shared with the other instances behind a balancer (each 32 octets or more): Retry
   * tokens of one are accepted by all, and any of them can reset a connection another held.
   * Without `statelessResetKey`, no Stateless Reset is sent. See `readQuicSecrets`.
   */
  secrets?: QuicSecrets;
  /** Leaves for a listener without `cert`/`key`, per SNI; default: the CA of `confdir` (as the TLS listener). */
  certs?: CertStore;
  /** Where the CA lives (default `$WIRELAYER_CONFDIR` or `~/.wirelayer`). */
  confdir?: string;
  /**
   * A socket already bound to use instead of binding one (`host` and `port` are then ignored): a
   * proxy's tunnel, e.g. one destination of a SOCKS5 association. Closed with the listener.
   */
  socket?: DatagramSocket;
  /**
   * The socket underneath: `native` (the addon: batched syscalls, UDP GSO) or `dgram`. Default:
   * `WIRELAYER_DATAGRAM`, else native where it loads (Linux).
   */
  datagramBackend?: DatagramBackend;
  /**
   * Accept the PROXY protocol v2 from load balancers (`trusted`): each of their datagrams must
   * start with a v2 header, whose source becomes the client's address (the Client's `peername`,
   * the path quiche sees, what Retry tokens are bound to), and what the session sends goes back
   * to the balancer that carried the client, without a header. Counted in `stats.proxyProtocol`.
   */
  proxyProtocol?: ProxyProtocolOptions;
}

/** What the listener counted: the endpoint's numbers and the handshake gate's. */
export interface QuicListenerStats extends EndpointStats, ListenerStats {
  versionNegotiations: number;
  /** Retries sent, for whatever reason. */
  retries: number;
  /** Of those, Retries sent because of load: Initials over `initialRateThreshold`, or decryptions over budget. */
  loadRetries: number;
  /**
   * Initials with a token that did not verify (HMAC, address, age): when Retry is required
   * (load, or half-open past `retryThreshold`), ours are dropped without decrypting and foreign
   * ones are answered with a Retry.
   */
  badTokens: number;
  /** Initial datagrams of new connections decrypted (a key derivation and a decryption each). */
  initialDecrypts: number;
  /** Initials with a valid token dropped because `maxDecryptsPerSecond` was spent. */
  decryptLimited: number;
  /** Initials that should have had a Retry, dropped because `maxRetriesPerSecond` was spent. */
  loadDrops: number;
  /** Stateless Resets sent: short headers for an ID of ours that no session holds (`secrets.statelessResetKey` given). */
  statelessResets: number;
  /** Of the datagrams that would have had a reset, those dropped because `maxResetsPerSecond` was spent. */
  resetsLimited: number;
  /**
   * Sessions whose first ID went without a stateless_reset_token transport parameter: quiche
   * 0.18 encodes them into 128 octets, too few after a Retry when the client's first DCID is
   * long (20 octets with 16-octet IDs of ours). Their spare IDs (NEW_CONNECTION_ID) have tokens.
   */
  resetTokensOmitted: number;
  /** Initials in datagrams under 1200 bytes, or with a DCID under 8 bytes. */
  badInitials: number;
  /** Long-header packets for no known connection that are not Initials. */
  strayPackets: number;
  /** Initials dropped because a limit was reached. */
  overLimit: number;
  /**
   * Half-open handshakes whose ClientHello did not arrive whole in time or did not parse, or that
   * failed before their session was made (a hook that threw, no certificate: also in `sessionErrors`).
   */
  helloFailures: number;
  /** Connections refused by the clientHello hook. */
  refused: number;
  /** Connections the clientHello hook passed through (raw UDP flows, not sessions). */
  passedThrough: number;
  /** What the PROXY protocol option did (null without it). */
  proxyProtocol: ProxyProtocolStats | null;
}

/**
 * Once over `initialRateThreshold`, the listener stays loaded this long: the rate is measured
 * as datagrams are read, so after a stall the backlog of a flood would otherwise look new.
 */
const LOAD_HOLD_MS = 1000;
/** RFC 9000, 14.1: a client's Initial datagram is at least this long. */
const MIN_INITIAL_DATAGRAM = 1200;
/** RFC 9000, 7.2: a client's first DCID is at least 8 bytes. */
const MIN_CLIENT_DCID = 8;

/** The version-independent connection IDs of a long header (RFC 8999, 5.1), or null. */
function invariantIds(msg: Buffer): { dcid: Buffer; scid: Buffer } | null {
  if (msg.length < 7) return null;
  const dcidEnd = 6 + msg[5]!;
  if (dcidEnd >= msg.length) return null;
  const scidEnd = dcidEnd + 1 + msg[dcidEnd]!;
  if (scidEnd > msg.length) return null;
  return { dcid: msg.subarray(6, dcidEnd), scid: msg.subarray(dcidEnd + 1, scidEnd) };
}

interface PendingHandshake {
  readonly dcid: Uint8Array;
  readonly odcid: Uint8Array | null;
  readonly rinfo: RemoteInfo;
  /** The local address the Initial arrived on (a wildcard listener on the native socket), else null. */
  readonly local: string | null;
  readonly version: number;
  readonly observer: InitialObserver;
  readonly datagrams: Buffer[];
  readonly timer: NodeJS.Timeout;
  deciding: boolean;
}

/** The 4-tuple key of a passed-through flow (its peer; the local end is the listener's). */

/**
 * Accepts QUIC sessions on one UDP socket (see the file comment for the admission path). Beside
 * the events of every listener, `passthrough` (`flow`, `start`: QuicPassthroughStart) for a
 * connection the hook passed through: a raw `UdpFlowSession` whose Client is the hook's, fed the
 * client's later datagrams by 4-tuple (a client that rebinds is not followed); whoever takes it
 * closes it (no idle timeout of its own).
 */
export class QuicListener extends BaseListener<QuicSession<Client>> {
  readonly endpoint: QuicEndpoint;
  readonly limits: QuicLimits;
  readonly #cids: CidGenerator;
  readonly #options: QuicListenOptions;
  readonly #pending = new CidTable<PendingHandshake>();
  readonly #pendingSet = new Set<PendingHandshake>();
  readonly #handshaking = new Set<QuicSession<Client>>();
  readonly #configs = new ServerConfigCache();
  readonly #tokens: RetryTokens;
  readonly #resets: StatelessResets;
  readonly #resetBudget: TokenBucket;
  readonly #resetToken = (cid: Uint8Array): bigint => this.#resets.token(cid);
  readonly #initialRate = new RateMeter();
  readonly #decrypts: TokenBucket;
  readonly #retries: TokenBucket;
  /** Loaded until then (performance.now() ms): Retry for every Initial without a valid token. */
  #loadedUntil = Number.NEGATIVE_INFINITY;
  /** The listener's own `cert`/`key`, if it was given them. */
  readonly #identity: QuicIdentity | null;
  #certs: CertStore | null;
  readonly #counts = {
    versionNegotiations: 0,
    retries: 0,
    loadRetries: 0,
    badTokens: 0,
    initialDecrypts: 0,
    decryptLimited: 0,
    loadDrops: 0,
    statelessResets: 0,
    resetsLimited: 0,
    resetTokensOmitted: 0,
    badInitials: 0,
    strayPackets: 0,
    overLimit: 0,
    helloFailures: 0,
    refused: 0,
    passedThrough: 0,
  };
  /** Passed-through connections by their peer's address and port (a seeded hash: no string per datagram). */
  readonly #raw = new FlowTable<UdpFlowSession>();
  readonly #rawOwner: FlowOwner = {
    sendTo: (datagram, flow) => this.endpoint.sendRaw(datagram, flow.port, flow.address),
    release: (flow) => {
      this.#raw.remove(flow);
    },
  };
  readonly #out = Buffer.allocUnsafe(MIN_INITIAL_DATAGRAM);

  private constructor(endpoint: QuicEndpoint, options: QuicListenOptions, certs: CertStore | null) {
    super('quic', options.signal);
    this.endpoint = endpoint;
    this.#options = options;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#cids = options.cids ?? RANDOM_CIDS;
    endpoint.shortCidLength = this.#cids.length;
    this.#tokens = new RetryTokens(RETRY_TOKEN_LIFETIME_MS, options.secrets?.tokenKey);
    this.#resets = new StatelessResets(options.secrets?.statelessResetKey);
    const resetsPerSecond = this.limits.maxResetsPerSecond;
    this.#resetBudget = new TokenBucket(resetsPerSecond, Math.ceil(resetsPerSecond / 4));
    const perSecond = this.limits.maxDecryptsPerSecond;
    this.#decrypts = new TokenBucket(perSecond, Math.ceil(perSecond / 4));
    const retriesPerSecond = this.limits.maxRetriesPerSecond;
    this.#retries = new TokenBucket(retriesPerSecond, Math.ceil(retriesPerSecond / 4));
    this.#identity =
      options.cert !== undefined && options.key !== undefined
        ? { cert: options.cert, key: options.key }
        : null;
    this.#certs = certs;
    endpoint.onUnroutable((msg, rinfo, local) => this.#onUnroutable(msg, rinfo, local));
    endpoint.onError((err) => this.socketError(err));
  }

  /**
   * Binds (default 127.0.0.1, port 0) and resolves once listening. Without `cert` and `key`, the
   * CA that signs the leaves is read (or made, the first time) here, not during a handshake.
   */
  static async listen(options: QuicListenOptions = {}): Promise<QuicListener> {
    options.signal?.throwIfAborted();
    if (options.secrets !== undefined) checkQuicSecrets(options.secrets);
    quiche();
    const own = options.cert !== undefined && options.key !== undefined;
    const certs =
      options.certs ?? (own ? null : new CertStore(await CertificateAuthority.open(options.confdir)));
    const given = options.proxyProtocol;
    const wrap =
      given === undefined
        ? undefined
        : (socket: DatagramSocket): DatagramSocket =>
            // a route lives as long as an idle session may
            new ProxyProtocolSocket(socket, {
              routeTimeout: options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT_MS,
              ...given,
            });
    const endpoint =
      options.socket !== undefined
        ? QuicEndpoint.over(wrap?.(options.socket) ?? options.socket)
        : await QuicEndpoint.open({
            host: options.host ?? '127.0.0.1',
            port: options.port ?? 0,
            backend: options.datagramBackend,
            wrap,
          });
    return new QuicListener(endpoint, options, certs);
  }

  get address(): Address {
    return [this.endpoint.local.host, this.endpoint.local.port];
  }

  /** Which datagram socket the listener runs on (`native`, `dgram`, or a proxy's `tunnel`). */
  get datagramBackend(): DatagramBackend | 'tunnel' {
    return this.endpoint.socket.backend;
  }

  /** Leaves for clients when the listener has no `cert`/`key` of its own (the CA of `confdir`). */
  get certs(): CertStore {
    this.#certs ??= new CertStore(CertificateAuthority.load(this.#options.confdir));
    return this.#certs;
  }

  /** The hook's identity, the listener's own, or a leaf for the SNI (else the address reached). */
  #choose(
    choice: Exclude<QuicClientHelloAnswer, QuicPassthroughAnswer | { refuse: ClientHelloRefusal }>,
    client: Client,
  ): QuicIdentity {
    if (choice) return choice;
    if (this.#identity) return this.#identity;
    const leaf = this.certs.get(client.sni ?? client.sockname[0].replace(/^::ffff:/, ''));
    return { cert: leaf.certPem, key: leaf.keyPem };
  }

  override get stats(): QuicListenerStats {
    const socket = this.endpoint.socket;
    return {
      ...this.listenerStats(),
      ...this.endpoint.stats,
      ...this.#counts,
      proxyProtocol: socket instanceof ProxyProtocolSocket ? { ...socket.proxyStats } : null,
    };
  }

  /** Half-open handshakes: ClientHello pending, or handshake running. */
  get halfOpen(): number {
    return this.#pendingSet.size + this.#handshaking.size;
  }

  #settings(alpn: readonly string[]): EngineSettings {
    return {
      alpn,
      idleTimeoutMs: this.#options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT_MS,
      activeCidLimit: Math.max(2, this.limits.maxCidsPerSession),
      keylog: this.#options.keylog !== undefined,
      disableActiveMigration: this.#cids.disableActiveMigration === true,
    };
  }

  #onUnroutable(msg: Buffer, rinfo: RemoteInfo, local: string | null): void {
    if (this.closing) return;
    if (this.#raw.size > 0) {
      const raw = this.#raw.find(rinfo.address, rinfo.port);
      if (raw !== undefined) {
        if (!raw.datagrams.deliver(msg)) this.endpoint.stats.unroutable++;
        return;
      }
    }
    if ((msg[0]! & 0x80) === 0) {
      this.endpoint.stats.unroutable++;
      this.#statelessReset(msg, rinfo, local);
      return;
    }
    const pending = this.#pending.get(msg, 6, msg[5]!);
    if (pending !== undefined) {
      this.#addToPending(pending, msg);
      return;
    }
    const version = msg.length >= 5 ? msg.readUInt32BE(1) : 0;
    if (version !== 0 && !quiche().versionIsSupported(version)) {
      // a version quiche does not speak (QUIC v2 included): Version Negotiation (RFC 9000,
      // 6.1), only for datagrams big enough to be a client's first
      const ids = invariantIds(msg);
      if (ids === null || msg.length < MIN_INITIAL_DATAGRAM || ids.dcid.length < MIN_CLIENT_DCID) {
        this.#counts.badInitials++;
        return;
      }
      const n = quiche().negotiateVersion(ids.scid, ids.dcid, this.#out);
      this.endpoint.sendRaw(Buffer.from(this.#out.subarray(0, n)), rinfo.port, rinfo.address, local);
      this.#counts.versionNegotiations++;
      return;
    }
    const parsed = parsePacketHeader(msg, 0, this.#cids.length);
    if (parsed.status !== 'done') {
      this.endpoint.stats.garbage++;
      return;
    }
    const header = parsed.value;
    if (header.form !== 'long' || header.type !== 'initial') {
      this.#counts.strayPackets++;
      return;
    }
    if (msg.length < MIN_INITIAL_DATAGRAM || header.dcid.length < MIN_CLIENT_DCID) {
      this.#counts.badInitials++;
      return;
    }
    const now = performance.now();
    // under a flood, decide from the header alone: no key derivation until the client proves its address
    if (this.#initialRate.hit(now) > this.limits.initialRateThreshold) this.#loadedUntil = now + LOAD_HOLD_MS;
    const loaded = now < this.#loadedUntil;
    if (
      this.sessions.size + this.#pendingSet.size + this.#raw.size >= this.limits.maxSessions ||
      this.halfOpen >= this.limits.maxHandshakes
    ) {
      this.#counts.overLimit++;
      return;
    }
    const gated = loaded || this.halfOpen >= this.limits.retryThreshold;
    let odcid: Uint8Array | null = null;
    if (header.token.length > 0) {
      odcid = this.#tokens.verify(header.token, header.dcid, rinfo.address, rinfo.port);
      if (odcid === null) {
        this.#counts.badTokens++;
        // one of ours, altered or expired: dropped unread when gated. A token of another shape
        // (NEW_TOKEN of another server) counts as none (RFC 9000, 8.1.3): a Retry when gated
        if (gated && this.#tokens.isOurs(header.token)) return;
      }
    }
    if (odcid === null && gated) {
      this.#retry(header.scid, header.dcid, header.version, rinfo, local, loaded, now);
      return;
    }
    if (!this.#decrypts.take(now)) {
      // over the decryption budget: the unproven are asked to prove their address (which costs
      // us no decryption); the proven send their Initial again after a PTO
      if (odcid === null) this.#retry(header.scid, header.dcid, header.version, rinfo, local, true, now);
      else this.#counts.decryptLimited++;
      return;
    }
    const dcid = Uint8Array.from(header.dcid);
    const fresh: PendingHandshake = {
      dcid,
      odcid,
      rinfo,
      local,
      version: header.version,
      observer: new InitialObserver(),
      datagrams: [],
      deciding: false,
      timer: setTimeout(() => this.#dropPending(fresh, true), this.limits.handshakeTimeoutMs),
    };
    this.#pending.add(dcid, fresh);
    this.#pendingSet.add(fresh);
    this.#addToPending(fresh, msg);
  }

  /** A Retry made from the header alone: a token (HMAC) and quiche's packet, no key derivation. */
  #retry(
    clientScid: Uint8Array,
    dcid: Uint8Array,
    version: number,
    rinfo: RemoteInfo,
    local: string | null,
    load: boolean,
    now: number,
  ): void {
    if (!this.#retries.take(now)) {
      this.#counts.loadDrops++;
      return;
    }
    const scid = this.#cids.next();
    const token = this.#tokens.mint(dcid, scid, rinfo.address, rinfo.port);
    const n = quiche().retry(clientScid, dcid, scid, token, version, this.#out);
    this.endpoint.sendRaw(Buffer.from(this.#out.subarray(0, n)), rinfo.port, rinfo.address, local);
    this.#counts.retries++;
    if (load) this.#counts.loadRetries++;
  }

  /**
   * A short header for an ID of our length that no session holds (one that ended, or one
   * another instance issued): a Stateless Reset tells its sender the connection is gone.
   * Only with a reset key; never for a datagram that is not a QUIC v1 short header (fixed
   * bit clear) nor one too small to answer with a smaller one; bounded per second.
   */
  #statelessReset(msg: Buffer, rinfo: RemoteInfo, local: string | null): void {
    if (!this.#resets.enabled || (msg[0]! & 0x40) === 0) return;
    const length = this.#cids.length;
    const reset = this.#resets.build(msg.subarray(1, 1 + length), msg.length);
    if (reset === null) return;
    if (!this.#resetBudget.take(performance.now())) {
      this.#counts.resetsLimited++;
      return;
    }
    this.endpoint.sendRaw(reset, rinfo.port, rinfo.address, local);
    this.#counts.statelessResets++;
  }

  #addToPending(pending: PendingHandshake, msg: Buffer): void {
    if (pending.datagrams.length >= this.limits.maxPendingDatagrams) {
      this.endpoint.stats.unroutable++;
      return;
    }
    pending.datagrams.push(msg);
    if (pending.deciding) return;
    this.#counts.initialDecrypts++;
    pending.observer.observe(msg, 'client');
    if (pending.observer.clientHello !== null) void this.#decide(pending);
    else if (pending.observer.problem !== null && pending.datagrams.length === 1) {
      // the first Initial does not even decrypt: nothing to wait for
      this.#dropPending(pending, true);
    }
  }

  #dropPending(pending: PendingHandshake, failed: boolean): void {
    clearTimeout(pending.timer);
    if (!this.#pendingSet.delete(pending)) return;
    this.#pending.delete(pending.dcid);
    if (failed) this.#counts.helloFailures++;
  }

  async #decide(pending: PendingHandshake): Promise<void> {
    pending.deciding = true;
    const hello = pending.observer.clientHello!;
    // on a wildcard, the address the client reached (the session's path starts there)
    const local: HostPort =
      pending.local === null ? this.endpoint.local : { host: pending.local, port: this.endpoint.local.port };
    const client = new Client({
      peername: [pending.rinfo.address, pending.rinfo.port],
      sockname: [local.host, local.port],
      state: ConnectionState.OPEN,
      transportProtocol: 'udp',
      tls: true,
      sni: hello.sni,
      alpnOffers: hello.alpnProtocols,
      proxyMode: this.#options.proxyMode ?? 'regular',
    });
    let choice: QuicClientHelloAnswer;
    try {
      choice = this.#options.clientHello
        ? await this.#options.clientHello(hello, client, { version: pending.version })
        : undefined;
    } catch (e) {
      this.#dropPending(pending, false);
      if (this.closing) return;
      this.#failHello(pending, client, ERR_CLIENT_HELLO_HOOK, describeHookFailure(e), e);
      return;
    }
    this.#dropPending(pending, false);
    if (this.closing) return;
    if (choice === false) {
      this.#counts.refused++;
      this.#refuse(pending);
      return;
    }
    if (choice && 'refuse' in choice) {
      const { code, message, alert } = choice.refuse;
      this.#counts.refused++;
      this.failedBeforeSession(client, code, message);
      this.#refuse(
        pending,
        alert === undefined ? QuicErrorCode.CONNECTION_REFUSED : QuicErrorCode.CRYPTO_ERROR + alert,
      );
      return;
    }
    if (choice && 'passthrough' in choice) {
      this.#passThrough(pending, client);
      return;
    }
    let identity: QuicIdentity;
    try {
      identity = this.#choose(choice, client);
    } catch (e) {
      const what = `No certificate for ${client.sni ?? 'the client'}: ${(e as Error).message}`;
      this.#failHello(pending, client, 'ERR_TLS_CERTIFICATE', what, e);
      return;
    }
    const offers = hello.alpnProtocols;
    // without a configured list, take the client's first offer (what a transparent proxy wants)
    const configured = choice?.ALPNProtocols?.length ? choice.ALPNProtocols : this.#options.ALPNProtocols;
    const alpn = configured?.length ? configured : offers.length > 0 ? [offers[0]!] : [DEFAULT_ALPN];
    let session: QuicSession<Client>;
    try {
      const config = this.#configs.get(identity, this.#settings(alpn));
      let scid = pending.odcid !== null ? pending.dcid : this.#cids.next();
      // random QUIC-LB nonces may repeat (4 octets: likely among tens of thousands of live IDs)
      for (let i = 0; i < 8 && pending.odcid === null && this.endpoint.route(scid) !== undefined; i++)
        scid = this.#cids.next();
      const peer = { host: pending.rinfo.address, port: pending.rinfo.port };
      // the first ID's reset token goes in the transport parameters: set on the shared config
      // right before accept, which copies them
      config.setStatelessResetToken(this.#resets.token(scid));
      let engine: QuicheConnection;
      try {
        engine = quiche().Connection.accept(scid, pending.odcid, local, peer, config);
      } catch (e) {
        // quiche 0.18 encodes transport parameters into 128 octets: after a Retry (two more
        // IDs) with a long client DCID, the token no longer fits; the spare IDs still have theirs
        if ((e as Error).message !== 'BufferTooShort') throw e;
        config.setStatelessResetToken(null);
        engine = quiche().Connection.accept(scid, pending.odcid, local, peer, config);
        this.#counts.resetTokensOmitted++;
      }
      client.mitmcert = this.#configs.leaf(identity);
      session = new QuicSession<Client>({
        conn: client,
        engine,
        transport: this.endpoint,
        isServer: true,
        local,
        peer: { host: pending.rinfo.address, port: pending.rinfo.port },
        scid,
        observer: pending.observer,
        keylog: this.#options.keylog,
        maxCids: this.#cids.issueSpares === false ? 1 : this.limits.maxCidsPerSession,
        cids: this.#cids,
        resetToken: this.#resetToken,
        timeoutMessage: 'Handshake timed out',
      });
      if (pending.odcid === null) session.routeHandshake(pending.dcid);
    } catch (e) {
      this.#failHello(pending, client, 'ERR_QUIC', `QUIC accept failed: ${(e as Error).message}`, e);
      return;
    }
    this.endpoint.add(session);
    this.#handshaking.add(session);
    const timer = setTimeout(() => {
      if (session.established) return;
      session.failureCode ??= 'ETIMEDOUT';
      session.destroy(new Error('Handshake timed out'));
    }, this.limits.handshakeTimeoutMs);
    session.once('up', () => {
      clearTimeout(timer);
      this.#handshaking.delete(session);
      this.sessionUp(session);
    });
    session.once('close', () => {
      clearTimeout(timer);
      if (this.#handshaking.delete(session)) {
        session.conn.error ??= 'Closed during the handshake';
        this.sessionFailed(session, session.failureCode ?? 'ERR_QUIC_HANDSHAKE');
      }
    });
    this.sessionStarted(session);
    for (const d of pending.datagrams) session.receive(d, pending.rinfo.address, pending.rinfo.port, true);
    session.wake();
  }

  /** The hook passed the connection through: a raw flow for its 4-tuple, handed over with what was held. */
  #passThrough(pending: PendingHandshake, client: Client): void {
    const { address, port } = pending.rinfo;
    // the same 4-tuple starting again (a client that restarted): the old flow ends
    const old = this.#raw.find(address, port);
    if (old !== undefined) {
      this.#raw.remove(old);
      void old.close();
    }
    if (!this.#raw.canInsert(address, port)) {
      // peers made to share a hash bucket (BUCKET_CAP): refused as a connection past a limit is
      this.#failHello(
        pending,
        client,
        'ERR_QUIC_LIMIT',
        'Too many passed-through connections share a hash bucket',
        null,
      );
      return;
    }
    client.tlsVersion = quicVersionFromWire(pending.version);
    const flow = new UdpFlowSession(this.#rawOwner, client, address, port);
    this.#raw.insert(flow);
    this.#counts.passedThrough++;
    const start: QuicPassthroughStart = { datagrams: pending.datagrams, observer: pending.observer };
    this.emit('passthrough', flow, start);
  }

  /** A handshake that fails before its session exists: reported (`start`, `sessionError`), counted, refused. */
  #failHello(pending: PendingHandshake, client: Client, code: string, message: string, cause: unknown): void {
    this.#counts.helloFailures++;
    this.failedBeforeSession(client, code, message, cause);
    this.#refuse(pending);
  }

  /** Refused before any state: a CONNECTION_CLOSE (by default CONNECTION_REFUSED) in an Initial of our own. */
  #refuse(pending: PendingHandshake, errorCode: number = QuicErrorCode.CONNECTION_REFUSED): void {
    const scid = parsePacketHeader(pending.datagrams[0]!, 0, this.#cids.length);
    if (scid.status === 'done' && scid.value.form === 'long' && isSupportedVersion(pending.version)) {
      const refusal = connectionCloseInitial(
        pending.version,
        pending.dcid,
        scid.value.scid,
        errorCode,
        'refused',
      );
      this.endpoint.sendRaw(refusal, pending.rinfo.port, pending.rinfo.address);
    }
  }

  protected async stopAccepting(): Promise<void> {
    for (const pending of [...this.#pendingSet]) this.#dropPending(pending, false);
    await Promise.all(this.#raw.entries().map((flow) => flow.close()));
    await this.endpoint.close();
  }
}
