import { randomUUID, type X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
import { formatAddress } from './address.js';
import { ConnectionGuardError, ConnectionStateError } from './errors.js';
import * as codec from './schema.js';
import {
  type Address,
  ConnectionState,
  connectionStateName,
  type ServerSpec,
  type TlsVersion,
  type TransportProtocol,
} from './types.js';

type AddressState = (string | number)[];

/** The state-format keys every connection has, in mitmproxy's order. */
export interface SerializedConnection {
  peername: AddressState | null;
  sockname: AddressState | null;
  id: string;
  transport_protocol: TransportProtocol;
  error: string | null;
  tls: boolean;
  certificate_list: string[];
  alpn: string | null;
  alpn_offers: string[];
  cipher: string | null;
  cipher_list: string[];
  tls_version: TlsVersion | null;
  sni: string | null;
  timestamp_start: number | null;
  timestamp_end: number | null;
  timestamp_tls_setup: number | null;
}

/** A Client's state (`toState()`): mitmproxy's keys, in its order. */
export interface SerializedClient extends SerializedConnection {
  mitmcert: string | null;
  proxy_mode: string;
}

/** A Server's state (`toState()`): mitmproxy's keys, in its order. */
export interface SerializedServer extends SerializedConnection {
  address: AddressState | null;
  timestamp_tcp_setup: number | null;
  via: [string, [string, number]] | null;
}

const CONNECTION_KEYS = [
  'peername',
  'sockname',
  'id',
  'transport_protocol',
  'error',
  'tls',
  'certificate_list',
  'alpn',
  'alpn_offers',
  'cipher',
  'cipher_list',
  'tls_version',
  'sni',
  'timestamp_start',
  'timestamp_end',
  'timestamp_tls_setup',
] as const;
export const CLIENT_STATE_KEYS = [...CONNECTION_KEYS, 'mitmcert', 'proxy_mode'] as const;
export const SERVER_STATE_KEYS = [...CONNECTION_KEYS, 'address', 'timestamp_tcp_setup', 'via'] as const;

/** Fields settable at construction; everything not given takes mitmproxy's default. */
export interface ConnectionInit {
  id?: string;
  state?: ConnectionState;
  transportProtocol?: TransportProtocol;
  error?: string | null;
  tls?: boolean;
  certificateList?: readonly X509Certificate[];
  alpn?: string | null;
  alpnOffers?: readonly string[];
  cipher?: string | null;
  cipherList?: readonly string[];
  tlsVersion?: TlsVersion | null;
  sni?: string | null;
  timestampEnd?: number | null;
  timestampTlsSetup?: number | null;
}

/** Seconds since the epoch as a float, with sub-millisecond resolution and never going back. */
export function now(): number {
  return (performance.timeOrigin + performance.now()) / 1000;
}

/**
 * A connection between two endpoints, as `mitmproxy.connection.Connection`: identity by `id`,
 * and every field filled by the drivers from what happened on the wire.
 */
export abstract class Connection {
  /** The remote end, `[host, port]` (IPv6 may carry flowinfo and scope id). */
  peername: Address | null;
  /** The local end. */
  sockname: Address | null;
  /** Not part of the state format. */
  state: ConnectionState;
  /** A uuid4; equality and `key` use only this. */
  id: string;
  transportProtocol: TransportProtocol;
  /** Why this endpoint failed or was killed; null on an ordinary close. */
  error: string | null;
  /** TLS (or DTLS, QUIC) is meant to be established on this connection (intent, not result). */
  tls: boolean;
  /** The peer's certificates, leaf first. */
  certificateList: readonly X509Certificate[];
  /** Negotiated ALPN; `''` = handshake done, nothing negotiated; null = not known. */
  alpn: string | null;
  /** The ALPN list of the ClientHello (Client) or what we offer upstream (Server). */
  alpnOffers: readonly string[];
  /** Negotiated cipher suite, always the IANA name. */
  cipher: string | null;
  /** Ciphers we accept or offer, only when configured. */
  cipherList: readonly string[];
  tlsVersion: TlsVersion | null;
  /** Client: the SNI received. Server: the SNI we send. */
  sni: string | null;
  timestampStart: number | null;
  timestampEnd: number | null;
  timestampTlsSetup: number | null;

  protected constructor(
    peername: Address | null,
    sockname: Address | null,
    timestampStart: number | null,
    init: ConnectionInit,
  ) {
    this.peername = peername;
    this.sockname = sockname;
    this.state = init.state ?? ConnectionState.CLOSED;
    this.id = init.id ?? randomUUID();
    this.transportProtocol = init.transportProtocol ?? 'tcp';
    this.error = init.error ?? null;
    this.tls = init.tls ?? false;
    this.certificateList = init.certificateList ?? [];
    this.alpn = init.alpn ?? null;
    this.alpnOffers = init.alpnOffers ?? [];
    this.cipher = init.cipher ?? null;
    this.cipherList = init.cipherList ?? [];
    this.tlsVersion = init.tlsVersion ?? null;
    this.sni = init.sni ?? null;
    this.timestampStart = timestampStart;
    this.timestampEnd = init.timestampEnd ?? null;
    this.timestampTlsSetup = init.timestampTlsSetup ?? null;
  }

  /** True only when the state is exactly OPEN (a half-closed connection is not connected). */
  get connected(): boolean {
    return this.state === ConnectionState.OPEN;
  }

  /** True once the TLS (DTLS, QUIC) handshake has completed. */
  get tlsEstablished(): boolean {
    return this.timestampTlsSetup !== null;
  }

  /** A value usable as a `Map` key: connections with the same id are the same connection. */
  get key(): string {
    return this.id;
  }

  /** mitmproxy's `__eq__`: another connection (Client or Server) with the same id. */
  equals(other: unknown): boolean {
    return other instanceof Connection && other.id === this.id;
  }

  /** The state format: snake_case keys in mitmproxy's order, certificates as PEM. */
  abstract toState(): SerializedConnection;

  /** Round-trips through the state and gives the copy a new id, so `c.copy().equals(c)` is false. */
  abstract copy(): Connection;

  /** `JSON.stringify(conn)` gives the state. */
  toJSON(): SerializedConnection {
    return this.toState();
  }

  /** ", alpn=h2" or ", tls" or "", as mitmproxy's `__str__` does. */
  protected tlsSuffix(): string {
    if (this.alpn) return `, alpn=${this.alpn}`;
    return this.tlsEstablished ? ', tls' : '';
  }

  protected commonState(): SerializedConnection {
    const addr = codec.nullable(codec.address);
    return {
      peername: addr.dump(this.peername),
      sockname: addr.dump(this.sockname),
      id: this.id,
      transport_protocol: this.transportProtocol,
      error: this.error,
      tls: this.tls,
      certificate_list: this.certificateList.map((c) => c.toString()),
      alpn: this.alpn,
      alpn_offers: [...this.alpnOffers],
      cipher: this.cipher,
      cipher_list: [...this.cipherList],
      tls_version: this.tlsVersion,
      sni: this.sni,
      timestamp_start: this.timestampStart,
      timestamp_end: this.timestampEnd,
      timestamp_tls_setup: this.timestampTlsSetup,
    };
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** A peer that reached us: created on accept, or on the first datagram of a new UDP peer. */
export class Client extends Connection {
  declare peername: Address;
  declare sockname: Address;
  declare timestampStart: number;
  /** The certificate we presented to this client (mitmproxy never fills it; wirelayer does). */
  mitmcert: X509Certificate | null;
  /** The proxy mode spec this client came in through. */
  proxyMode: string;

  constructor(
    init: ConnectionInit & {
      peername: Address;
      sockname: Address;
      timestampStart?: number;
      mitmcert?: X509Certificate | null;
      proxyMode?: string;
    },
  ) {
    super(init.peername, init.sockname, init.timestampStart ?? now(), init);
    this.mitmcert = init.mitmcert ?? null;
    this.proxyMode = init.proxyMode ?? 'regular';
  }

  override toString(): string {
    return `Client(${formatAddress(this.peername)}, state=${connectionStateName(this.state)}${this.tlsSuffix()})`;
  }

  override toState(): SerializedClient {
    return { ...this.commonState(), mitmcert: this.mitmcert?.toString() ?? null, proxy_mode: this.proxyMode };
  }

  override toJSON(): SerializedClient {
    return this.toState();
  }

  override copy(): Client {
    return Client.fromState({ ...this.toState(), id: randomUUID() });
  }

  /** Loads a state strictly: every key of the format, nothing else, each value checked. */
  static fromState(state: unknown): Client {
    const s = checkKeys(state, CLIENT_STATE_KEYS);
    const peername = codec.address.load(s.peername, 'peername');
    const sockname = codec.address.load(s.sockname, 'sockname');
    return new Client({
      ...loadCommon(s),
      peername,
      sockname,
      timestampStart: codec.timestamp.load(s.timestamp_start, 'timestamp_start'),
      mitmcert: codec.nullable(codec.certificate).load(s.mitmcert, 'mitmcert'),
      proxyMode: codec.str.load(s.proxy_mode, 'proxy_mode'),
    });
  }
}

/** A peer we dial (or mean to). `address` and `via` cannot change while the state is OPEN. */
export class Server extends Connection {
  #address: Address | null;
  #via: ServerSpec | null;
  /** TCP connect completed (TCP only; UDP has no setup). */
  timestampTcpSetup: number | null;

  constructor(
    init: ConnectionInit & {
      address: Address | null;
      peername?: Address | null;
      sockname?: Address | null;
      timestampStart?: number | null;
      timestampTcpSetup?: number | null;
      via?: ServerSpec | null;
    },
  ) {
    super(init.peername ?? null, init.sockname ?? null, init.timestampStart ?? null, init);
    this.#address = init.address;
    this.#via = init.via ?? null;
    this.timestampTcpSetup = init.timestampTcpSetup ?? null;
  }

  /** The host and port we mean to reach. */
  get address(): Address | null {
    return this.#address;
  }

  set address(value: Address | null) {
    this.guard('address', this.#address, value);
    this.#address = value;
  }

  /** The upstream proxy, `[scheme, [host, port]]`, or null. */
  get via(): ServerSpec | null {
    return this.#via;
  }

  set via(value: ServerSpec | null) {
    this.guard('via', this.#via, value);
    this.#via = value;
  }

  private guard(field: 'address' | 'via', current: unknown, next: unknown): void {
    if (this.state === ConnectionState.OPEN && !sameTuple(current, next))
      throw new ConnectionGuardError(field);
  }

  override toString(): string {
    const srcPort = this.sockname ? `, src_port=${this.sockname[1]}` : '';
    return `Server(${formatAddress(this.address)}, state=${connectionStateName(this.state)}${this.tlsSuffix()}${srcPort})`;
  }

  override toState(): SerializedServer {
    return {
      ...this.commonState(),
      address: codec.nullable(codec.address).dump(this.address),
      timestamp_tcp_setup: this.timestampTcpSetup,
      via: codec.nullable(codec.serverSpec).dump(this.via),
    };
  }

  override toJSON(): SerializedServer {
    return this.toState();
  }

  override copy(): Server {
    return Server.fromState({ ...this.toState(), id: randomUUID() });
  }

  /** Loads a state strictly: every key of the format, nothing else, each value checked. */
  static fromState(state: unknown): Server {
    const s = checkKeys(state, SERVER_STATE_KEYS);
    const addr = codec.nullable(codec.address);
    const ts = codec.nullable(codec.timestamp);
    return new Server({
      ...loadCommon(s),
      peername: addr.load(s.peername, 'peername'),
      sockname: addr.load(s.sockname, 'sockname'),
      timestampStart: ts.load(s.timestamp_start, 'timestamp_start'),
      address: addr.load(s.address, 'address'),
      timestampTcpSetup: ts.load(s.timestamp_tcp_setup, 'timestamp_tcp_setup'),
      via: codec.nullable(codec.serverSpec).load(s.via, 'via'),
    });
  }
}

function sameTuple(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function checkKeys<const K extends string>(state: unknown, keys: readonly K[]): Record<K, unknown> {
  if (typeof state !== 'object' || state === null || Array.isArray(state)) {
    throw new ConnectionStateError('ERR_STATE_NOT_OBJECT', '', 'state: expected an object');
  }
  for (const key of Object.keys(state)) {
    if (!(keys as readonly string[]).includes(key)) {
      throw new ConnectionStateError('ERR_STATE_UNKNOWN_KEY', key, `${key}: unknown key in connection state`);
    }
  }
  for (const key of keys) {
    if (!Object.hasOwn(state, key)) {
      throw new ConnectionStateError('ERR_STATE_MISSING_KEY', key, `${key}: missing from connection state`);
    }
  }
  return state as Record<K, unknown>;
}

function loadCommon(s: Record<(typeof CONNECTION_KEYS)[number], unknown>): ConnectionInit {
  const nstr = codec.nullable(codec.str);
  const ts = codec.nullable(codec.timestamp);
  return {
    id: codec.str.load(s.id, 'id'),
    transportProtocol: codec.transportProtocol.load(s.transport_protocol, 'transport_protocol'),
    error: nstr.load(s.error, 'error'),
    tls: codec.bool.load(s.tls, 'tls'),
    certificateList: codec.list(codec.certificate).load(s.certificate_list, 'certificate_list'),
    alpn: nstr.load(s.alpn, 'alpn'),
    alpnOffers: codec.list(codec.str).load(s.alpn_offers, 'alpn_offers'),
    cipher: nstr.load(s.cipher, 'cipher'),
    cipherList: codec.list(codec.str).load(s.cipher_list, 'cipher_list'),
    tlsVersion: codec.tlsVersion.load(s.tls_version, 'tls_version'),
    sni: nstr.load(s.sni, 'sni'),
    timestampEnd: ts.load(s.timestamp_end, 'timestamp_end'),
    timestampTlsSetup: ts.load(s.timestamp_tls_setup, 'timestamp_tls_setup'),
  };
}
