/**
 * The addon bus: mitmproxy's event hooks in camelCase, their argument types, and how they run.
 * An addon is an object with any of the hooks as (possibly async) methods. For one flow, hooks
 * run in mitmproxy's order, each addon in turn, and the flow waits for every call to settle
 * before it goes on (an async hook is backpressure). A hook that throws fails that flow alone:
 * the bus counts it and raises a HookError (`code` ERR_PROXY_HOOK) that the flow ends with.
 */
import type { Client, Server } from '../connection/index.js';
import type { TlsVersion } from '../connection/types.js';
import type { ClientHello } from '../handshake/tls/client-hello.js';

/** `serverConnect`, `serverConnected`, `serverConnectError`, `serverDisconnected`: the two legs of a flow. */
export interface ServerConnectionHookData {
  client: Client;
  /** In `serverConnect`, setting `server.error` vetoes the connect (mitmproxy's semantics). */
  server: Server;
}

/**
 * `tlsClienthello`: the ClientHello as our handshake layer parsed it (byte fields are views valid
 * during the hook). Set `ignoreConnection` to relay the encrypted bytes untouched (passthrough).
 */
export interface ClientHelloData {
  client: Client;
  server: Server;
  clientHello: ClientHello;
  /** Passthrough: true when `--ignore-hosts`/`--allow-hosts` say so; a hook may change it. */
  ignoreConnection: boolean;
  /**
   * The server leg's handshake runs before the client's (connection strategy `eager`): needed
   * for the upstream certificate's names and the server's ALPN choice. A hook may turn it off.
   */
  establishServerTlsFirst: boolean;
}

/** Handshake settings of the client leg (what we present), as a `tlsStartClient` hook may change them. */
export interface TlsClientSettings {
  /** The certificate chain (leaf first) and key presented to the client, PEM. */
  cert: string;
  key: string;
  /** ALPN protocols the client leg may select from (mirrors the server's choice); empty: select none. */
  ALPNProtocols: string[];
  minVersion?: TlsVersion;
  maxVersion?: TlsVersion;
  /** An OpenSSL cipher string. */
  ciphers?: string;
}

/** Handshake settings of the server leg (what we send upstream), as a `tlsStartServer` hook may change them. */
export interface TlsServerSettings {
  /** SNI sent upstream: the client's, else the mode's host (none for an IP literal). */
  servername: string | undefined;
  /** ALPN offers sent upstream: the client's offers. */
  ALPNProtocols: string[];
  /** Verify the upstream (off with `insecure`). */
  rejectUnauthorized: boolean;
  /** Trust for the upstream's chain (Node's roots plus `upstreamCa`), PEM; undefined: Node's roots. */
  ca: string[] | undefined;
  minVersion?: TlsVersion;
  maxVersion?: TlsVersion;
  ciphers?: string;
}

/**
 * The argument of every TLS hook (`tlsStartClient`, `tlsEstablishedServer`, `tlsFailedClient`,
 * ...): `conn` is the leg concerned (`client` or `server`), `isDtls` tells DTLS from TLS (QUIC
 * legs have it false), and `settings` are that leg's handshake settings (a `tlsStart*` hook may
 * change them in place; in `tlsFailedClient` for a handshake that failed before its settings
 * were made, an empty object).
 */
export interface TlsData<S extends TlsClientSettings | TlsServerSettings> {
  conn: Client | Server;
  client: Client;
  server: Server;
  isDtls: boolean;
  settings: S;
}

/**
 * `socks5Auth` (mitmproxy's `socks5_auth`): the username and password a SOCKS5 client sent
 * (RFC 1929). `valid` starts true when they match `proxyAuth`; a hook decides by setting it.
 */
export interface Socks5AuthData {
  client: Client;
  username: string;
  password: string;
  valid: boolean;
}

/** One message of a flow: a chunk of a TCP stream (or TLS plaintext), or one UDP datagram or DTLS record. */
export class FlowMessage {
  #dropped = false;
  /** Seconds since the epoch, as the models' timestamps. */
  readonly timestamp: number;

  constructor(
    /** Sent by the client (else by the server). */
    readonly fromClient: boolean,
    /** The bytes; a hook may replace them. */
    public content: Uint8Array,
    timestamp: number,
  ) {
    this.timestamp = timestamp;
  }

  /** The message is not forwarded (a hook dropped it). */
  get dropped(): boolean {
    return this.#dropped;
  }

  /** Do not forward this message. */
  drop(): void {
    this.#dropped = true;
  }
}

/**
 * A flow of `tcp*` or `udp*` hooks: the two legs, the current message only (never the history,
 * so a long flow costs bounded memory), counters, and the error that ended it.
 */
export class Flow {
  /** The flow's id: its Client's id, as the `flow` key of the JSON records. */
  readonly id: string;
  /** The message the running `*Message` hook is about; null outside one. */
  message: FlowMessage | null = null;
  /** Set when the flow failed (reset, upstream error, a hook that threw). */
  error: string | null = null;
  /** True until the flow has ended. */
  live = true;
  bytesFromClient = 0;
  bytesFromServer = 0;
  messagesFromClient = 0;
  messagesFromServer = 0;
  /** Free for addons, and where QUIC streams keep their ids (`quicStreamIdClient`, `quicStreamIdServer`). */
  readonly metadata: Record<string, unknown> = {};

  constructor(
    readonly kind: 'tcp' | 'udp',
    readonly client: Client,
    readonly server: Server,
  ) {
    this.id = client.id;
  }
}

/** A flow of raw TCP, TLS plaintext or one QUIC stream (`tcpStart`, `tcpMessage`, `tcpEnd`, `tcpError`). */
export type TcpFlow = Flow & { readonly kind: 'tcp' };
/** A flow of raw UDP datagrams or DTLS records (`udpStart`, `udpMessage`, `udpEnd`, `udpError`). */
export type UdpFlow = Flow & { readonly kind: 'udp' };

type Hook<A> = (arg: A) => unknown;

/**
 * An addon: an object with some of mitmproxy's hooks (camelCase), sync or async. Each is called with one
 * argument, as in mitmproxy.
 */
export interface Addon {
  clientConnected?: Hook<Client>;
  clientDisconnected?: Hook<Client>;
  serverConnect?: Hook<ServerConnectionHookData>;
  serverConnected?: Hook<ServerConnectionHookData>;
  serverConnectError?: Hook<ServerConnectionHookData>;
  serverDisconnected?: Hook<ServerConnectionHookData>;
  tlsClienthello?: Hook<ClientHelloData>;
  tlsStartClient?: Hook<TlsData<TlsClientSettings>>;
  tlsStartServer?: Hook<TlsData<TlsServerSettings>>;
  tlsEstablishedClient?: Hook<TlsData<TlsClientSettings>>;
  tlsEstablishedServer?: Hook<TlsData<TlsServerSettings>>;
  tlsFailedClient?: Hook<TlsData<TlsClientSettings>>;
  tlsFailedServer?: Hook<TlsData<TlsServerSettings>>;
  /** In place of `tlsStartClient` for a QUIC client leg (mitmproxy's `quic_start_client`). */
  quicStartClient?: Hook<TlsData<TlsClientSettings>>;
  /** In place of `tlsStartServer` for a QUIC server leg (mitmproxy's `quic_start_server`). */
  quicStartServer?: Hook<TlsData<TlsServerSettings>>;
  tcpStart?: Hook<TcpFlow>;
  tcpMessage?: Hook<TcpFlow>;
  tcpEnd?: Hook<TcpFlow>;
  tcpError?: Hook<TcpFlow>;
  udpStart?: Hook<UdpFlow>;
  udpMessage?: Hook<UdpFlow>;
  udpEnd?: Hook<UdpFlow>;
  udpError?: Hook<UdpFlow>;
  socks5Auth?: Hook<Socks5AuthData>;
}

/** A hook's name. */
export type HookName = keyof Addon;
/** The argument a hook is called with. */
export type HookArgument<N extends HookName> = Parameters<NonNullable<Addon[N]>>[0];

/** Every hook, in the order mitmproxy documents them. */
export const HOOK_NAMES: readonly HookName[] = [
  'clientConnected',
  'clientDisconnected',
  'serverConnect',
  'serverConnected',
  'serverConnectError',
  'serverDisconnected',
  'tlsClienthello',
  'tlsStartClient',
  'tlsStartServer',
  'tlsEstablishedClient',
  'tlsEstablishedServer',
  'tlsFailedClient',
  'tlsFailedServer',
  'quicStartClient',
  'quicStartServer',
  'tcpStart',
  'tcpMessage',
  'tcpEnd',
  'tcpError',
  'udpStart',
  'udpMessage',
  'udpEnd',
  'udpError',
  'socks5Auth',
];

/** The `code` of a flow a hook failed by throwing (or rejecting). */
export const ERR_PROXY_HOOK = 'ERR_PROXY_HOOK';

/** A hook threw: the flow it ran for fails with this error (the thrown value is `cause`). */
export class HookError extends Error {
  override readonly name = 'HookError';
  readonly code = ERR_PROXY_HOOK;
  constructor(
    /** The hook that threw. */
    readonly hook: HookName,
    cause: unknown,
  ) {
    super(`Addon hook ${hook} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Runs the hooks of a list of addons; counts the ones that throw. */
export class HookBus {
  readonly #handlers = new Map<HookName, { addon: Addon; fn: Hook<unknown> }[]>();
  readonly #errors = new Map<HookName, number>();

  constructor(addons: readonly Addon[]) {
    for (const name of HOOK_NAMES) {
      const list: { addon: Addon; fn: Hook<unknown> }[] = [];
      for (const addon of addons) {
        const fn = addon[name];
        if (typeof fn === 'function') list.push({ addon, fn: fn as Hook<unknown> });
      }
      if (list.length > 0) this.#handlers.set(name, list);
    }
  }

  /** Whether any addon has this hook (flows skip the per-message path when none has). */
  has(name: HookName): boolean {
    return this.#handlers.has(name);
  }

  /** Hooks that threw, by name. */
  get errors(): Record<string, number> {
    return Object.fromEntries(this.#errors);
  }

  /**
   * Calls every addon's `name` hook in turn with `arg`, awaiting each. Rejects with a HookError
   * (counted) at the first that throws; the addons after it are not called.
   */
  async run<N extends HookName>(name: N, arg: HookArgument<N>): Promise<void> {
    const list = this.#handlers.get(name);
    if (list === undefined) return;
    for (const { addon, fn } of list) {
      try {
        const r = fn.call(addon, arg);
        if (r instanceof Promise) await r;
      } catch (err) {
        this.#errors.set(name, (this.#errors.get(name) ?? 0) + 1);
        throw new HookError(name, err);
      }
    }
  }
}
