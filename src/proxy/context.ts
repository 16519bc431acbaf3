/**
 * What every layer of the proxy shares: the resolved options, the addon bus, the counters, and
 * the steps every flow takes the same way (opening the server leg with its hooks, failing a
 * flow, the closing hooks). Internal: the public surface is `Proxy` and the hook types.
 */
import type { KeyObject } from 'node:crypto';
import { type EventEmitter, setMaxListeners } from 'node:events';
import { type CertStore, generateKey, type IssuedCertificate } from '../certs/index.js';
import { LruMap } from '../collections/lru-map.js';
import type { Client, Connection, Server } from '../connection/index.js';
import type { TlsVersion } from '../connection/types.js';
import { ConnectError, errorCode } from '../transport/errors.js';
import type { CidGenerator } from '../transport/quic/cid.js';
import type { Session } from '../transport/types.js';
import { type Flow, type HookBus, HookError, type ServerConnectionHookData } from './hooks.js';
import type { Impairment, ImpairStats } from './impair/index.js';
import type { HostFilter } from './layers/next-layer.js';
import type { FlowMode } from './modes.js';

/** The model events of the command-line contract, per leg of a flow. */
export type ModelEvent = 'start' | 'up' | 'closed' | 'error';

/** A certificate given for a domain (`--certs DOMAIN=FILE`): PEM chain and key. */
export interface GivenCertificate {
  /** A DNS name, or `*.example.com` for its subdomains, or `*` for every name. */
  domain: string;
  cert: string;
  key: string;
}

/** Options every layer reads, resolved from `ProxyOptions`. */
export interface LayerOptions {
  listenHost: string;
  listenPort: number;
  insecure: boolean;
  /** Trust for the server legs: Node's roots plus `upstreamCa`; undefined: Node's roots alone. */
  upstreamCa: string[] | undefined;
  keylog: string | ((line: Buffer, conn: Connection) => void) | undefined;
  connectionStrategy: 'eager' | 'lazy';
  upstreamCert: boolean;
  certs: readonly GivenCertificate[];
  /** Server-leg dials (connect and handshake), ms. */
  connectTimeout: number;
  /** Client-leg handshakes, ms. */
  handshakeTimeout: number;
  /** Idle timeout of a stream flow (ms; 0: none). */
  idleTimeout: number;
  /** Idle timeout of a UDP or DTLS flow (ms). */
  udpTimeout: number;
  /** Idle timeout of QUIC connections, ms. */
  quicTimeout: number;
  maxFlows: number | undefined;
  minVersion: TlsVersion | undefined;
  maxVersion: TlsVersion | undefined;
  ciphers: string | undefined;
  confdir: string | undefined;
  /** SOCKS5's username/password method: the credentials, `any` (a `socks5Auth` hook decides), or none. */
  proxyAuth: { username: string; password: string } | 'any' | null;
  socks5: Socks5Settings;
  /** QUIC client legs: a Retry for every new connection. */
  quicRetry: boolean;
  /** QUIC client legs: the generator of the IDs their listener issues; null: random. */
  quicCids: CidGenerator | null;
}

/** The settings of SOCKS5 modes (`ProxyOptions.socks5`), resolved. */
export interface Socks5Settings {
  /** BND.ADDR of UDP ASSOCIATE replies; null: the relay socket's own address. */
  advertise: string | null;
  /** UDP associations held at most, in total and per client IP address. */
  maxAssociations: number;
  maxAssociationsPerClient: number;
  /** Destinations (flows) one association holds at most; at the cap the idlest is closed. */
  maxDestinations: number;
}

/** Counters of the SOCKS5 modes. */
export interface Socks5Stats {
  /** Control connections accepted, and requests by command once their reply went out. */
  connections: number;
  connects: number;
  associations: number;
  liveAssociations: number;
  /** Replies other than success, by the RFC's name (HOST_UNREACHABLE, COMMAND_NOT_SUPPORTED, ...). */
  refusals: Record<string, number>;
  /** Connections that ended before a request: by cause (ERR_SOCKS5_VERSION, NO_ACCEPTABLE_METHODS, AUTH_FAILED, ETIMEDOUT, CLOSED). */
  handshakeFailures: Record<string, number>;
  /** Datagrams of associations relayed (data bytes, without headers). */
  datagramsFromClient: number;
  datagramsToClient: number;
  /** Datagrams dropped: FRAG != 0, from another address than the client's, malformed headers, addressed to one of our own sockets. */
  fragDrops: number;
  foreignDrops: number;
  malformedDrops: number;
  loopDrops: number;
  /** Datagrams dropped while their destination's layers were starting (its queue full). */
  pendingDrops: number;
  /** Destinations closed at an association's cap. */
  destinationEvictions: number;
  /** Destinations whose layers could not start (their datagrams dropped). */
  destinationFailures: number;
}

/** Counters of a proxy since it started. */
export interface ProxyStats {
  /** Flows started (a client leg accepted), and live now. */
  flows: number;
  liveFlows: number;
  /** Flows whose encrypted bytes were relayed untouched (`--ignore-hosts`, `ignoreConnection`). */
  passthrough: number;
  /** Flows that ended in failure, by the failure's `code` (ERR_PROXY_HOOK, ECONNREFUSED, ...). */
  flowErrors: Record<string, number>;
  /** Hooks that threw, by hook name. */
  hookErrors: Record<string, number>;
  /** Records of DTLS flows a `udpMessage` hook dropped, and those dropped because a flow's queue was full. */
  hookDrops: number;
  queueDrops: number;
  /** The SOCKS5 modes' counters. */
  socks5: Socks5Stats;
  /** What `impair` did to the datagrams (and stream chunks) per direction; null without it. */
  impair: ImpairStats | null;
}

/** The shared state of one proxy. */
export class ProxyContext {
  flows = 0;
  liveFlows = 0;
  passthrough = 0;
  /** Datagrams of DTLS flows dropped by hooks or full queues. */
  readonly datagramCounters = { hookDrops: 0, queueDrops: 0 };
  readonly socks5: Socks5Stats = {
    connections: 0,
    connects: 0,
    associations: 0,
    liveAssociations: 0,
    refusals: {},
    handshakeFailures: {},
    datagramsFromClient: 0,
    datagramsToClient: 0,
    fragDrops: 0,
    foreignDrops: 0,
    malformedDrops: 0,
    loopDrops: 0,
    pendingDrops: 0,
    destinationEvictions: 0,
    destinationFailures: 0,
  };
  /** The link's impairment; null (the default) leaves every socket and stream as it is. */
  impair: Impairment | null = null;
  readonly #flowErrors = new Map<string, number>();
  readonly #running = new Set<Promise<void>>();
  readonly #leaves = new LruMap<string, IssuedCertificate>(256);
  readonly #shutdown = new AbortController();
  /** Legs whose `closed` or `error` was reported. */
  readonly #ended = new WeakSet<Client | Server>();
  #leafKey: KeyObject | null = null;

  constructor(
    readonly options: LayerOptions,
    readonly bus: HookBus,
    readonly filter: HostFilter,
    /** Leaves for the client legs, signed by the wirelayer CA. */
    readonly certs: CertStore,
    /** Where model and stream events go (the Proxy). */
    readonly events: EventEmitter,
  ) {
    // every live flow (and SOCKS5 association) listens for the shutdown: no leak past 10 of them
    setMaxListeners(0, this.#shutdown.signal);
  }

  /** Aborted when the proxy closes: live flows end their legs. */
  get shutdown(): AbortSignal {
    return this.#shutdown.signal;
  }

  /** The proxy is closing: every live flow is told to end. */
  stop(): void {
    this.#shutdown.abort();
  }

  get stats(): ProxyStats {
    return {
      flows: this.flows,
      liveFlows: this.liveFlows,
      passthrough: this.passthrough,
      flowErrors: Object.fromEntries(this.#flowErrors),
      hookErrors: this.bus.errors,
      ...this.datagramCounters,
      socks5: {
        ...this.socks5,
        refusals: { ...this.socks5.refusals },
        handshakeFailures: { ...this.socks5.handshakeFailures },
      },
      impair: this.impair?.stats ?? null,
    };
  }

  /**
   * A leaf of the wirelayer CA for a name set (the first name is its CN; all are SANs, DNS names
   * or IP literals), cached per set. Leaves share one key, as the CertStore's do.
   */
  leaf(names: readonly string[], organization?: string): IssuedCertificate {
    const key = `${organization ?? ''}\0${names.join('\0').toLowerCase()}`;
    return this.#leaves.getOrSet(key, () => {
      this.#leafKey ??= generateKey({ type: 'ec' });
      return this.certs.ca.issue(names[0]!, { key: this.#leafKey, altNames: names.slice(1), organization });
    });
  }

  /** Runs one flow to its end; `settled()` waits for every flow started. */
  track(run: () => Promise<void>): void {
    this.flows++;
    this.liveFlows++;
    const p = run()
      .catch((err: unknown) => {
        // a flow's own failures are handled inside it: this is a bug, kept visible
        process.emitWarning(`wirelayer proxy: flow crashed: ${(err as Error)?.stack ?? String(err)}`);
      })
      .finally(() => {
        this.liveFlows--;
        this.#running.delete(p);
      });
    this.#running.add(p);
  }

  /** Resolves once every flow started so far has ended. */
  async settled(): Promise<void> {
    while (this.#running.size > 0) await Promise.all([...this.#running]);
  }

  /**
   * A model event of a flow's leg (the CLI prints them). A leg ends once: after its `closed` or
   * `error`, later reports of its end (a failure seen by a layer, then the flow's closing) are not
   * repeated.
   */
  model(event: ModelEvent, conn: Client | Server, flow: Flow | string, mode: FlowMode): void {
    if (event === 'closed' || event === 'error') {
      if (this.#ended.has(conn)) return;
      this.#ended.add(conn);
    }
    this.events.emit('model', event, conn, typeof flow === 'string' ? flow : flow.id, mode);
  }

  /**
   * A flow failed: its first failure is counted by code and recorded on the flow (and, for a
   * hook that threw, on its Client); `flowError` reports it, and any later hook failure.
   */
  failFlow(flow: Flow, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (flow.error === null) {
      // the first failure is the flow's; what follows from it (the other leg's) is not counted again
      const code = errorCode(err, 'ERR_PROXY_FLOW');
      this.#flowErrors.set(code, (this.#flowErrors.get(code) ?? 0) + 1);
      flow.error = message;
    } else if (!(err instanceof HookError)) {
      return;
    }
    if (err instanceof HookError) flow.client.error ??= message;
    this.events.emit('flowError', err, flow);
  }

  /**
   * The server leg's hooks around `dial`: `serverConnect` (a hook may veto by setting
   * `server.error`), then `serverConnected` or `serverConnectError`. Resolves with the session,
   * or null when the connect was vetoed or failed (the hooks have run, the flow error is set).
   * `opened` receives the session before `serverConnected` runs, so a hook that throws there
   * still leaves it to be closed.
   */
  async openServer<S extends Session<Server>>(
    flow: Flow,
    mode: FlowMode,
    dial: () => Promise<S>,
    opened: (session: S) => void,
  ): Promise<S | null> {
    const data: ServerConnectionHookData = { client: flow.client, server: flow.server };
    const server = flow.server;
    await this.bus.run('serverConnect', data);
    this.model('start', server, flow, mode);
    if (server.error !== null) {
      server.timestampEnd ??= server.timestampStart;
      this.failFlow(flow, new ConnectError('ERR_PROXY_VETO', server.error, server));
      this.model('error', server, flow, mode);
      await this.bus.run('serverConnectError', data);
      return null;
    }
    let session: S;
    try {
      session = await dial();
    } catch (err) {
      if (!(err instanceof ConnectError)) throw err;
      this.failFlow(flow, err);
      this.model('error', server, flow, mode);
      await this.bus.run('serverConnectError', data);
      return null;
    }
    opened(session);
    await this.bus.run('serverConnected', data);
    return session;
  }

  /**
   * Awaits a hook at the end of a flow (`tcpEnd`, `serverDisconnected`, ...): it runs even when
   * the flow failed, and one that throws is counted without stopping the ones after it.
   */
  async settle(flow: Flow, hook: Promise<void>): Promise<void> {
    try {
      await hook;
    } catch (err) {
      this.failFlow(flow, err);
    }
  }
}
