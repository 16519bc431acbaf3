import type { SecureVersion } from 'node:tls';
import type { CertStore } from '../../certs/index.js';
import type { Client, Server, TlsVersion } from '../../connection/index.js';
import type { ClientHello } from '../../handshake/tls/client-hello.js';
import type { TcpSession } from '../tcp/session.js';
import type { ConnectOptions, ListenOptions, SecurityOptions } from '../types.js';
import type { TlsSession } from './session.js';

/** Where a passed-through connection goes. */
export interface PassthroughTarget {
  host: string;
  port: number;
  /**
   * A TCP session to `host:port` already connected (a proxy's server leg, dialed before the
   * ClientHello): used instead of dialing, and its `conn` gets the observed handshake fields.
   */
  upstream?: TcpSession<Server>;
}

/**
 * The certificate a hook answers with, and optionally this connection's own handshake settings
 * (a proxy mirroring its upstream): `ALPNProtocols` replaces the listener's list (empty: select
 * none), `minVersion`, `maxVersion` and `ciphers` the listener's.
 */
export interface ClientHelloCertificate {
  cert: string | Buffer;
  key: string | Buffer;
  ALPNProtocols?: readonly string[];
  minVersion?: TlsVersion;
  maxVersion?: TlsVersion;
  ciphers?: string;
}

/**
 * A hook's refusal: the session fails with `code` and `message` (its Client's `error`), after a
 * fatal TLS alert `alert` (RFC 8446 6: e.g. 40 handshake_failure) is sent if given.
 */
export interface ClientHelloRefusal {
  code: string;
  message: string;
  alert?: number;
}

/**
 * What a ClientHello hook answers: the certificate to present (`cert`, `key` as PEM, and maybe
 * the settings of this handshake), relay the connection untouched to an upstream
 * (`passthrough`), refuse it (`refuse`), or nothing (the listener's default).
 */
export type ClientHelloAnswer =
  | ClientHelloCertificate
  | { passthrough: PassthroughTarget }
  | { refuse: ClientHelloRefusal }
  | undefined
  // biome-ignore lint/suspicious/noConfusingVoidType: a hook that decides nothing may just return
  | void;

/**
 * Called once per connection with the parsed ClientHello, after `client.sni` and
 * `client.alpnOffers` were filled from it and before the handshake goes on. Byte fields of
 * `hello` are views valid during the call.
 */
export type ClientHelloHook = (
  hello: ClientHello,
  client: Client,
) => ClientHelloAnswer | Promise<ClientHelloAnswer>;

/** Options of `tls.listen`. */
export interface TlsListenOptions extends ListenOptions {
  /** See ClientHelloHook. */
  clientHello?: ClientHelloHook;
  /** Serve TLS and plain TCP on the same port: the first bytes decide. */
  detect?: boolean;
  /** With `detect`, a client silent this long (ms) is taken for plain TCP (a server-first protocol); default 2000. */
  detectTimeout?: number;
  /** A connection not through its handshake after this many ms is dropped; default 10000. */
  handshakeTimeout?: number;
  /** Leaves for listeners without `cert`/`key`; default: the CA of `confdir`. */
  certs?: CertStore;
  /** Where the CA lives (default `$WIRELAYER_CONFDIR` or `~/.wirelayer`). */
  confdir?: string;
  /**
   * Runs on each accepted connection (after `start`) before its first bytes are read for a
   * ClientHello: a protocol that comes first on the stream (a proxy's SOCKS5 handshake) reads
   * and writes `session.socket` itself and gives back (`unshift`) what it read beyond its end.
   * True goes on to the TLS layer (its deadlines start then); false leaves the connection to
   * the preamble's owner (the session stays the listener's until it closes).
   */
  preamble?: (session: TlsSession<Client>) => Promise<boolean>;
}

/** Options of `tls.connect` (those of every driver's connect). */
export type TlsConnectOptions = ConnectOptions;

/** The TlsVersions node:tls can negotiate. */
const SECURE_VERSIONS: ReadonlySet<string> = new Set(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']);

/** A TlsVersion for node:tls, or an error naming what cannot be asked for. */
export function secureVersion(version: TlsVersion | undefined, what: string): SecureVersion | undefined {
  if (version === undefined) return undefined;
  if (!SECURE_VERSIONS.has(version))
    throw new RangeError(
      `${what}: ${version} is not a TLS version node:tls can negotiate (TLSv1 to TLSv1.3)`,
    );
  return version as SecureVersion;
}

/** The options of node:tls both roles share. */
export function nodeSecurityOptions(o: SecurityOptions): {
  ca?: string | Buffer | (string | Buffer)[];
  cert?: string | Buffer;
  key?: string | Buffer;
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  ciphers?: string;
} {
  const out: ReturnType<typeof nodeSecurityOptions> = {};
  if (o.ca !== undefined) out.ca = typeof o.ca === 'string' || Buffer.isBuffer(o.ca) ? o.ca : [...o.ca];
  if (o.cert !== undefined) out.cert = o.cert;
  if (o.key !== undefined) out.key = o.key;
  const minVersion = secureVersion(o.minVersion, 'minVersion');
  const maxVersion = secureVersion(o.maxVersion, 'maxVersion');
  if (minVersion) out.minVersion = minVersion;
  if (maxVersion) out.maxVersion = maxVersion;
  if (o.ciphers !== undefined) out.ciphers = o.ciphers;
  return out;
}
