import type { RemoteInfo } from 'node:dgram';
import type { CertStore } from '../../certs/index.js';
import type { Client, TlsVersion } from '../../connection/index.js';
import type { ClientHello } from '../../handshake/tls/client-hello.js';
import type { ClientHelloRefusal } from '../tls/options.js';
import type { SecurityOptions } from '../types.js';
import type { UdpConnectOptions } from '../udp/connect.js';
import type { UdpListenOptions } from '../udp/listener.js';
import type { DtlsContextOptions, DtlsRole, DtlsVersion } from './engine.js';

/** A handshake not complete after this long fails (listener default; a connect's `connectTimeout` default). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * What a ClientHello hook answers: the certificate chain (leaf first) and key to present, PEM,
 * and optionally the ALPN protocols this session selects from instead of the listener's (a
 * proxy mirroring its upstream's choice); a refusal; or nothing (the listener's own).
 */
export type DtlsClientHelloAnswer =
  | { cert: string | Buffer; key: string | Buffer; ALPNProtocols?: readonly string[] }
  /** Refuse the client: the fatal alert (if given) goes out in the clear, the session fails with `code` and `message`. */
  | { refuse: ClientHelloRefusal }
  | undefined
  // biome-ignore lint/suspicious/noConfusingVoidType: a hook that decides nothing may just return
  | void;

/**
 * Called once per session with the ClientHello as the handshake layer parsed it (reassembled if
 * it came in fragments), after `client.sni` and `client.alpnOffers` were filled from it and while
 * the handshake is paused. Byte fields of `hello` are views valid during the call.
 */
export type DtlsClientHelloHook = (
  hello: ClientHello,
  client: Client,
) => DtlsClientHelloAnswer | Promise<DtlsClientHelloAnswer>;

/** Engine settings both roles may tune (tests and lossy links). */
export interface DtlsTuning {
  /** Largest datagram sent during the handshake (flights are fragmented to fit); default 1200. */
  mtu?: number;
  /** First retransmission timeout in ms (doubles on each retransmission); default 1000 (RFC 6347). */
  initialRetransmitMs?: number;
  /** Cap of the retransmission backoff in ms; default 60000. */
  maxRetransmitMs?: number;
}

/** Options of `dtls.listen`: those of a UDP listener, certificates, the ClientHello hook and the DTLS tuning. */
export interface DtlsListenOptions
  extends Omit<UdpListenOptions, 'admit' | 'minVersion' | 'maxVersion'>,
    DtlsTuning {
  minVersion?: TlsVersion;
  maxVersion?: TlsVersion;
  /** See DtlsClientHelloHook. */
  clientHello?: DtlsClientHelloHook;
  /** Serve DTLS and raw UDP on one port: a flow whose first datagram is not a DTLS ClientHello is a raw UDP session. */
  detect?: boolean;
  /**
   * Asked about a peer's first ClientHello (whole in one datagram, no cookie yet) before the
   * cookie exchange: true makes the flow a raw UDP session that carries the peer's datagrams
   * as they are, this ClientHello first (a proxy passes it through to a server that runs its
   * own handshake and cookie exchange). Its Client has `tls`, `sni` and `alpnOffers` from the
   * hello; `passthrough` (session, hello) is emitted before `session`. Synchronous: it runs on
   * the listener's hot path, before any state exists for the peer.
   */
  passthrough?: (hello: ClientHello, peer: RemoteInfo) => boolean;
  /** A session not through its handshake after this many ms fails; default 10000. */
  handshakeTimeout?: number;
  /** Leaves for a listener without `cert`/`key` (one per SNI); default: the CA of `confdir`. */
  certs?: CertStore;
  /** Where the CA lives (default `$WIRELAYER_CONFDIR` or `~/.wirelayer`). */
  confdir?: string;
}

/** Options of `dtls.connect`: those of a UDP connect (no probe) and the DTLS tuning. */
export interface DtlsConnectOptions extends Omit<UdpConnectOptions, 'probe'>, DtlsTuning {}

/** The DTLS versions the engine negotiates, by TlsVersion name. */
const DTLS_VERSIONS: ReadonlySet<string> = new Set<DtlsVersion>(['DTLSv1', 'DTLSv1.2']);

/** A TlsVersion for the engine, or a RangeError naming what cannot be asked for. */
export function dtlsVersion(version: TlsVersion | undefined, what: string): DtlsVersion | undefined {
  if (version === undefined) return undefined;
  if (!DTLS_VERSIONS.has(version))
    throw new RangeError(
      `${what}: ${version} is not a DTLS version the engine negotiates (DTLSv1, DTLSv1.2)`,
    );
  return version as DtlsVersion;
}

const pem = (value: string | Buffer): string => (typeof value === 'string' ? value : value.toString('utf8'));

/** The engine context options of a role from the driver options (named as in node:tls). */
export function engineContextOptions(
  role: DtlsRole,
  o: SecurityOptions & DtlsTuning & { minVersion?: TlsVersion; maxVersion?: TlsVersion },
  ownCertificate?: { cert: string; key: string },
): DtlsContextOptions {
  const ca =
    o.ca === undefined ? undefined : Array.isArray(o.ca) ? o.ca.map(pem) : pem(o.ca as string | Buffer);
  const cert = o.cert !== undefined ? pem(o.cert) : ownCertificate?.cert;
  const key = o.key !== undefined ? pem(o.key) : ownCertificate?.key;
  const minVersion = dtlsVersion(o.minVersion, 'minVersion');
  const maxVersion = dtlsVersion(o.maxVersion, 'maxVersion');
  return {
    role,
    ...(cert !== undefined && role === 'server' ? { cert } : {}),
    ...(key !== undefined && role === 'server' ? { key } : {}),
    ...(ca !== undefined ? { ca } : {}),
    rejectUnauthorized: role === 'client' ? (o.rejectUnauthorized ?? true) : false,
    ...(minVersion ? { minVersion } : {}),
    ...(maxVersion ? { maxVersion } : {}),
    ...(o.ciphers !== undefined ? { ciphers: o.ciphers } : {}),
    ...(o.ALPNProtocols !== undefined ? { ALPNProtocols: o.ALPNProtocols } : {}),
    cookieExchange: true,
    pauseOnClientHello: role === 'server',
    keylog: o.keylog !== undefined,
    ...(o.mtu !== undefined ? { mtu: o.mtu } : {}),
    ...(o.initialRetransmitMs !== undefined ? { initialRetransmitMs: o.initialRetransmitMs } : {}),
    ...(o.maxRetransmitMs !== undefined ? { maxRetransmitMs: o.maxRetransmitMs } : {}),
  };
}

export { type KeylogSink, keylogSink } from '../keylog.js';
