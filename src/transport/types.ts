import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Address, Client, Connection, Server, TlsVersion } from '../connection/index.js';

/** The schemes of the command-line contract, one driver each. */
export const SCHEMES = ['tcp', 'tls', 'udp', 'dtls', 'quic'] as const;
/** A driver's scheme: `tcp`, `tls`, `udp`, `dtls` or `quic`. */
export type Scheme = (typeof SCHEMES)[number];

/**
 * Handshake options shared by TLS, DTLS and QUIC (named as in `node:tls`); drivers without a
 * handshake ignore them.
 */
export interface SecurityOptions {
  /** SNI to send (client); no SNI is sent for an IP literal unless given. */
  servername?: string;
  /** ALPN protocols to offer (client) or accept, in preference order (server). */
  ALPNProtocols?: readonly string[];
  /** Verify the peer (on by default for clients); `false` is `--insecure`. */
  rejectUnauthorized?: boolean;
  /** Trusted CA certificates, PEM. */
  ca?: string | Buffer | readonly (string | Buffer)[];
  /** Our certificate chain and key, PEM. A listener without them makes its own. */
  cert?: string | Buffer;
  key?: string | Buffer;
  minVersion?: TlsVersion;
  maxVersion?: TlsVersion;
  /** An OpenSSL cipher string, e.g. `DEFAULT@SECLEVEL=0`. */
  ciphers?: string;
  /** NSS key log (SSLKEYLOGFILE format): a file to append to, or a callback per line. */
  keylog?: string | ((line: Buffer, conn: Connection) => void);
}

/** Options every driver's `listen` takes. */
export interface ListenOptions extends SecurityOptions {
  /** Address to bind; default `127.0.0.1`. */
  host?: string;
  /** Port to bind; default 0 (read the bound port from `listener.address`). */
  port?: number;
  /** Aborting closes the listener. */
  signal?: AbortSignal;
  /** Idle timeout of a session in milliseconds (datagram drivers; 0 = none). */
  idleTimeout?: number;
  /** Keep a half-closed TCP session open (as `net`'s `allowHalfOpen`); default false. */
  allowHalfOpen?: boolean;
  /**
   * TCP_NODELAY on the sockets (as `net`'s `noDelay`); default true, as Go and Python's asyncio:
   * a proxy relaying small messages must not wait for the peer's delayed ACK (40 ms on Linux).
   */
  noDelay?: boolean;
  /** The proxy mode recorded on every Client (`proxyMode`); default "regular". */
  proxyMode?: string;
  /**
   * TCP and TLS listeners (Linux, CAP_NET_ADMIN): bind with IP_TRANSPARENT, so connections a
   * TPROXY rule steers here are accepted (their `sockname` is the address the client dialed).
   */
  transparent?: boolean;
  /**
   * TCP and TLS: listen on this bound socket (a file descriptor) instead of binding one, as
   * `net`'s `listen({ fd })`: a worker's share of a SO_REUSEPORT group. `host` and `port` are
   * then ignored. (The datagram drivers take a bound `socket` instead.)
   */
  fd?: number;
}

/** Options every driver's `connect` takes (named as in `node:net` and `node:tls`). */
export interface ConnectOptions extends SecurityOptions {
  host: string;
  port: number;
  /**
   * Aborting cancels the connect (it rejects with a ConnectAbortError: `name` 'AbortError',
   * `code` 'ABORT_ERR', `cause` the signal's reason, as Node's own), or closes the session once
   * connected.
   */
  signal?: AbortSignal;
  /**
   * Give up the whole dial (connect and handshake) after this many milliseconds: a ConnectError
   * with `code` ETIMEDOUT. Named as undici's: it is not Node's idle `timeout` (see `idleTimeout`).
   * Default: none for TCP, TLS and UDP without `probe`; 5000 for a UDP probe; 10000 for DTLS and QUIC.
   */
  connectTimeout?: number;
  /** Local address and port to bind before dialing. */
  localAddress?: string;
  localPort?: number;
  /** A Server model to fill in (so a caller can watch it from the start); one is made otherwise. */
  conn?: Server;
  allowHalfOpen?: boolean;
  /**
   * TCP_NODELAY on the sockets (as `net`'s `noDelay`); default true, as Go and Python's asyncio:
   * a proxy relaying small messages must not wait for the peer's delayed ACK (40 ms on Linux).
   */
  noDelay?: boolean;
  /** Idle timeout of the session in milliseconds (datagram drivers; 0 = none). */
  idleTimeout?: number;
  /**
   * UDP, which has no handshake: a datagram to send once connected; the connect then resolves
   * only when the target answers, and fails on an ICMP error or after `connectTimeout`. Without it a UDP
   * connect succeeds as soon as the socket is connected.
   */
  probe?: Uint8Array;
}

/**
 * One connection and its data channel. Events: `up` (established: connected, handshake done),
 * `close` (`hadError`), after which `conn.state` is CLOSED and `conn.timestampEnd` is set.
 */
export interface Session<C extends Connection = Connection> extends EventEmitter, AsyncDisposable {
  readonly scheme: Scheme;
  readonly conn: C;
  /** True once `up` has been emitted. */
  readonly established: boolean;
  /** True once `close` has been emitted. */
  readonly closed: boolean;
  /** Closes gracefully (FIN, close_notify, CONNECTION_CLOSE) and resolves once CLOSED. */
  close(): Promise<void>;
  /** Closes at once; `error` (if given) is recorded in `conn.error`. */
  destroy(error?: Error): void;
}

/** A byte-stream session (TCP, TLS, a QUIC stream). */
export interface StreamSession<C extends Connection = Connection> extends Session<C> {
  readonly stream: Duplex;
}

/** Datagrams of a session, boundaries kept. Incoming: `datagram` events, or iterate. */
export interface DatagramChannel extends EventEmitter, AsyncIterable<Uint8Array> {
  send(datagram: Uint8Array): void;
}

/** A datagram session (UDP, DTLS, QUIC DATAGRAM frames). */
export interface DatagramSession<C extends Connection = Connection> extends Session<C> {
  readonly datagrams: DatagramChannel;
}

/** A session of any driver. */
export type AnySession<C extends Connection = Connection> = StreamSession<C> | DatagramSession<C>;

/** What every listener counts (drivers add their own counters beside these). */
export interface ListenerStats {
  /** Sessions that failed before they were up (`sessionError`), by the error's `code`. */
  sessionErrors: Record<string, number>;
  /** Errors of the listening socket (each also an `error` event), by `code`. */
  socketErrors: Record<string, number>;
}

/**
 * Accepts sessions. Events:
 * - `start` (`session`): a Client model was created (accepted; a handshake may still run);
 *   `transportProtocol` and `tls` are already set.
 * - `session` (`session`): up, ready to use; iterating the listener yields the same sessions.
 * - `sessionError` (`session`, `error`): failed before it was up; `error` is a SessionError with
 *   the engine's or the OS's `code` (ERR_CLIENT_HELLO_HOOK when a ClientHello hook threw, its
 *   value as `cause`), counted in `stats.sessionErrors`.
 * - `error` (`error`): the listening socket failed (counted in `stats.socketErrors`). As with
 *   `net.Server`, an `error` without a listener throws: add one.
 * - `close`: closed, every session with it.
 *
 * Iterating is optional and can stop (`break`) and start again: sessions that came up while
 * no iteration ran are not queued (events still see them); ending an iteration closes the
 * sessions it had queued but not yielded.
 */
export interface Listener<S extends Session<Client> = AnySession<Client>>
  extends EventEmitter,
    AsyncIterable<S>,
    AsyncDisposable {
  readonly scheme: Scheme;
  /** The bound address (with the real port when 0 was asked for). */
  readonly address: Address;
  /** Live sessions: started and not yet closed. */
  readonly sessions: ReadonlySet<S>;
  /** A snapshot of the counters. */
  readonly stats: ListenerStats;
  /** Stops accepting and closes every live session. */
  close(): Promise<void>;
}

/** A transport driver. Every driver passes the compliance suite in `test/compliance/`. */
export interface Driver<
  SC extends Session<Client> = AnySession<Client>,
  SS extends Session<Server> = AnySession<Server>,
> {
  readonly scheme: Scheme;
  listen(options?: ListenOptions): Promise<Listener<SC>>;
  /**
   * Dials; rejects with a `ConnectError` (its `conn.error` set, `state` CLOSED, `timestampEnd`
   * set) when it fails.
   */
  connect(options: ConnectOptions): Promise<SS>;
  /**
   * The Server model a connect with these options fills (`options.conn`, or a new one), with what
   * is known before dialing: address, `transportProtocol`, `tls`, and the `sni` and `alpnOffers`
   * a handshake will send. Pass it as `conn` to watch the connect from its `start`.
   */
  serverModel(
    options: Pick<ConnectOptions, 'host' | 'port' | 'conn' | 'servername' | 'ALPNProtocols'>,
  ): Server;
}
