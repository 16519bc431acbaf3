/**
 * The DTLS engine: a typed wrapper over wirelayer's native addon (`native/dtls/`, C++ over
 * the OpenSSL that Node itself carries). It is sans-IO, like quiche: no sockets, no threads,
 * no timers of its own. The driver feeds each UDP datagram to {@link DtlsSession.receive},
 * sends what {@link DtlsSession.takeOutgoing} hands back, and arms one timer from
 * {@link DtlsSession.timeout}, calling {@link DtlsSession.onTimeout} when it fires.
 *
 * Every call that can change a session returns its status as {@link DtlsStatus} bits, so
 * the hot path needs no extra calls to learn what happened:
 *
 * ```ts
 * const status = session.receive(datagram);
 * if (status & DtlsStatus.OUTGOING) for (const d of session.takeOutgoing() ?? []) socket.send(d);
 * if (status & DtlsStatus.DATA) for (let m = session.read(); m; m = session.read()) emit(m);
 * if (status & DtlsStatus.TIMER) rearm(session.timeout());
 * ```
 *
 * The retransmission timer is OpenSSL's own and reads the wall clock (OpenSSL offers no
 * clock injection), so `timeout()` is real time; `initialRetransmitMs` makes it short in tests.
 *
 * The addon is the package's prebuilt N-API file (`prebuilds/`), or `build/Release` when it was
 * compiled here; `WIRELAYER_DTLS_ADDON` may name another file (loader.ts has the order). It is
 * loaded on first use, with every OpenSSL symbol resolved at once.
 */
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import type { TlsVersion } from '../../connection/types.js';
import { loadDtlsAddon } from './loader.js';

/** DTLS versions the engine can negotiate. */
export type DtlsVersion = 'DTLSv1' | 'DTLSv1.2';
/** What a handshake may report: the negotiable versions, and OpenSSL's pre-standard DTLS. */
export type DtlsNegotiatedVersion = Extract<TlsVersion, 'DTLSv0.9' | 'DTLSv1' | 'DTLSv1.2'>;
export type DtlsRole = 'client' | 'server';

/**
 * Status bits returned by every session call that can change the session. The bits are
 * the session's state after the call, not edges: test them, do not compare the number.
 */
export const DtlsStatus = {
  /** Datagrams are waiting in `takeOutgoing()`. */
  OUTGOING: 1,
  /** Application records are waiting in `read()`. */
  DATA: 2,
  /** The handshake is complete. */
  ESTABLISHED: 4,
  /** A server paused on the ClientHello: read `clientHello()`, maybe `setCertificate()`, then `resume()`. */
  CLIENT_HELLO: 8,
  /** The retransmission timer was armed or stopped since the last report: ask `timeout()`. */
  TIMER: 16,
  /** The peer sent close_notify. */
  PEER_CLOSED: 32,
  /** The session failed for good: see `error`. */
  FAILED: 64,
  /** Key log lines are waiting in `takeKeylog()`. */
  KEYLOG: 128,
  /** We sent close_notify, or the session is destroyed. */
  CLOSED: 256,
  /** A server still in the cookie exchange (no ClientHello with a valid cookie yet). */
  LISTENING: 512,
} as const;
export type DtlsStatusBit = (typeof DtlsStatus)[keyof typeof DtlsStatus];

/** Stable codes of {@link DtlsError}. */
export type DtlsErrorCode =
  | 'ERR_DTLS_ADDON_MISSING'
  | 'ERR_DTLS_OPENSSL_SYMBOLS'
  | 'ERR_DTLS_ADDON_LOAD'
  | 'ERR_DTLS_CONTEXT'
  | 'ERR_DTLS_SESSION'
  | 'ERR_DTLS_CERTIFICATE'
  | 'ERR_DTLS_ALPN'
  | 'ERR_DTLS_WRITE'
  | 'ERR_DTLS_DESTROYED'
  | 'ERR_DTLS_HANDSHAKE'
  | 'ERR_DTLS_CERT_VERIFY'
  | 'ERR_DTLS_TIMEOUT';

/**
 * An engine error. For a failed session, `reasons` carries OpenSSL's error queue
 * (`error:0A000086:SSL routines::certificate verify failed`), `sslError` the
 * `SSL_get_error` name, and `verifyError` the X.509 verification result if it failed.
 */
export class DtlsError extends Error {
  override readonly name = 'DtlsError';
  constructor(
    readonly code: DtlsErrorCode,
    message: string,
    readonly reasons: readonly string[] = [],
    readonly sslError: string | null = null,
    readonly verifyError: string | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Context configuration; names follow `node:tls` where one exists. */
export interface DtlsContextOptions {
  role: DtlsRole;
  /** Certificate chain in PEM, leaf first. A server may leave it out and set one per session. */
  cert?: string | readonly string[];
  /** Private key of `cert`, in PEM. */
  key?: string;
  /** Trust anchors in PEM. Default for a verifying client: Node's root store (`tls.rootCertificates`). */
  ca?: string | readonly string[];
  /**
   * Client: verify the server's chain (and name, see `checkHost`); default true.
   * Server: with `requestCert`, require and verify a client certificate; default true.
   */
  rejectUnauthorized?: boolean;
  /** Server: ask the client for a certificate. */
  requestCert?: boolean;
  /** Default 'DTLSv1.2' (or 'DTLSv1' if maxVersion is 'DTLSv1'). DTLSv1 also needs `ciphers: 'DEFAULT@SECLEVEL=0'`. */
  minVersion?: DtlsVersion;
  /** Default 'DTLSv1.2'. */
  maxVersion?: DtlsVersion;
  /** OpenSSL cipher string, e.g. 'ECDHE-ECDSA-CHACHA20-POLY1305' or 'DEFAULT@SECLEVEL=0'. */
  ciphers?: string;
  /** Client: protocols offered. Server: protocols accepted, in preference order. */
  ALPNProtocols?: readonly string[];
  /** Server: require a HelloVerifyRequest cookie round trip before any state (default true). */
  cookieExchange?: boolean;
  /** Server: pause every handshake on its ClientHello until `resume()` (default false). */
  pauseOnClientHello?: boolean;
  /** Collect NSS key log lines (SSLKEYLOGFILE format) in each session's `takeKeylog()`. */
  keylog?: boolean;
  /** Largest datagram (UDP payload) a session sends during the handshake; default 1200. */
  mtu?: number;
  /** IP + UDP header bytes per datagram (28 for IPv4, 48 for IPv6); default 28. */
  mtuOverhead?: number;
  /** First retransmission timeout (doubles on each retransmission); default 1000 ms (RFC 6347). */
  initialRetransmitMs?: number;
  /** Cap of the doubling; default 60000 ms (RFC 6347). OpenSSL gives up after 12 retransmissions. */
  maxRetransmitMs?: number;
}

/** Per-session settings. */
export interface DtlsSessionOptions {
  /** Client: the SNI to send (not sent for IP literals), and by default the name to verify. */
  servername?: string;
  /** Client: override the context's ALPN offers. */
  ALPNProtocols?: readonly string[];
  /**
   * Client: the DNS name or IP the server certificate must match. Default: `servername`
   * when verifying; `false` checks the chain only.
   */
  checkHost?: string | false;
  /** Server: the peer's address as the driver names it ("203.0.113.5:4433"); binds the cookie. */
  peer?: string;
  /** Override the context's MTU. */
  mtu?: number;
  /** Server: override the context's `pauseOnClientHello`. */
  pauseOnClientHello?: boolean;
  /** Override the context's first retransmission timeout. */
  initialRetransmitMs?: number;
  /** Override the context's retransmission timeout cap. */
  maxRetransmitMs?: number;
}

/** What a server saw in the ClientHello (available once `CLIENT_HELLO` is reported, and after). */
export interface DtlsClientHello {
  readonly sni: string | null;
  readonly alpnOffers: readonly string[];
  /** Offered cipher suites as IANA code points, in the client's order. */
  readonly cipherSuites: readonly number[];
  /** client_version of the ClientHello (0xfefd for DTLS 1.2, 0xfeff for DTLS 1.0). */
  readonly legacyVersion: number;
}

/** The negotiated parameters; every field is null until the handshake completes. */
export interface DtlsHandshakeInfo {
  readonly version: DtlsNegotiatedVersion | null;
  /** IANA name, e.g. 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'. */
  readonly cipher: string | null;
  /** Negotiated ALPN; '' when the handshake completed without one (the model's convention). */
  readonly alpn: string | null;
  /** Server: the SNI received. Client: the SNI sent. */
  readonly sni: string | null;
  /** Why the peer's chain did not verify (also set when verification is off), or null. */
  readonly verifyError: string | null;
  readonly alertSent: string | null;
  readonly alertReceived: string | null;
}

/** Result of {@link DtlsContext.statelessCookieCheck}. */
export type DtlsCookieCheck =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** The HelloVerifyRequest to send back, or null: not a ClientHello, drop it. */
      readonly reply: Buffer | null;
    };

// --- The native binding --------------------------------------------------------------------

interface NativeContextOptions {
  role: DtlsRole;
  cert?: string;
  key?: string;
  ca?: string;
  verify?: boolean;
  requestCert?: boolean;
  minVersion?: DtlsVersion;
  maxVersion?: DtlsVersion;
  ciphers?: string;
  alpn?: readonly string[];
  cookieExchange?: boolean;
  pauseOnClientHello?: boolean;
  keylog?: boolean;
  mtu?: number;
  mtuOverhead?: number;
  initialRetransmitMs?: number;
  maxRetransmitMs?: number;
}

interface NativeSessionOptions {
  servername?: string;
  alpn?: readonly string[];
  checkHost?: string;
  peer?: string;
  mtu?: number;
  pauseOnClientHello?: boolean;
  initialRetransmitMs?: number;
  maxRetransmitMs?: number;
}

interface NativeContext {
  cookieCheck(datagram: Uint8Array, peer: string): true | Buffer | null;
  rotateCookieSecret(): void;
  destroy(): void;
}

interface NativeCertificate {
  destroy(): void;
}

interface NativeFailure {
  message: string;
  sslError: string;
  errors: string[];
  verifyError: string | null;
}

interface NativeInfo extends DtlsHandshakeInfo {
  readonly outDropped: number;
  readonly inDropped: number;
  readonly recordsDropped: number;
  readonly invalidDropped: number;
}

interface NativeSession {
  start(): number;
  receive(datagram: Uint8Array): number;
  takeOutgoing(meta: Uint32Array): Buffer | null;
  timeout(): number;
  onTimeout(): number;
  write(data: Uint8Array): number;
  read(): Buffer | null;
  readAll(meta: Uint32Array): Buffer | null;
  close(): number;
  resume(): number;
  flags(): number;
  setCertificate(cert: NativeCertificate): void;
  setAlpn(protocols: readonly string[]): void;
  setMtu(mtu: number): void;
  maxPayload(): number;
  info(): NativeInfo;
  peerCertificates(): Buffer[];
  localCertificate(): Buffer | null;
  clientHello(): DtlsClientHello | null;
  failure(): NativeFailure | null;
  takeKeylog(): string[] | null;
  destroy(): void;
}

interface NativeBinding {
  NativeContext: new (options: NativeContextOptions) => NativeContext;
  NativeCertificate: new (cert: string, key: string) => NativeCertificate;
  NativeSession: new (context: NativeContext, options: NativeSessionOptions) => NativeSession;
  opensslVersion: string;
  opensslHeaders: string;
}

let binding: NativeBinding | undefined;
let loadError: DtlsError | undefined;

/**
 * Loads the addon once (loader.ts: which file, and why it failed). Throws a {@link DtlsError}:
 * `ERR_DTLS_ADDON_MISSING` when it was not built, `ERR_DTLS_OPENSSL_SYMBOLS` when this Node
 * does not export OpenSSL.
 */
function loadBinding(): NativeBinding {
  if (binding) return binding;
  if (loadError) throw loadError;
  const result = loadDtlsAddon();
  if (!result.ok) {
    loadError = new DtlsError(result.code, result.message, [], null, null, { cause: result.cause });
    throw loadError;
  }
  binding = result.exports as NativeBinding;
  return binding;
}

/** Whether the engine can be loaded here (never throws). */
export function dtlsEngineAvailable(): boolean {
  try {
    loadBinding();
    return true;
  } catch {
    return false;
  }
}

/** The OpenSSL the engine runs on (Node's) and the headers it was built against. */
export function dtlsEngineVersions(): { readonly openssl: string; readonly headers: string } {
  const b = loadBinding();
  return { openssl: b.opensslVersion, headers: b.opensslHeaders };
}

/** Native errors carry a `code`; turn them into DtlsErrors with that code. */
function rethrow(err: unknown, fallback: DtlsErrorCode): never {
  if (err instanceof DtlsError) throw err;
  if (err instanceof RangeError || err instanceof TypeError) throw err;
  const e = err as { code?: unknown; message?: unknown };
  const code =
    typeof e.code === 'string' && e.code.startsWith('ERR_DTLS_') ? (e.code as DtlsErrorCode) : fallback;
  throw new DtlsError(code, typeof e.message === 'string' ? e.message : String(err), [], null, null, {
    cause: err,
  });
}

const pemList = (value: string | readonly string[] | undefined): string | undefined =>
  value === undefined ? undefined : typeof value === 'string' ? value : value.join('\n');

/**
 * Batches cross the boundary as one Buffer of packets back to back, with their count and
 * lengths in this array (one per module: JavaScript is single-threaded, each worker has its
 * own). 4097 slots: the native queues hold at most 4096 packets, so one call takes them all.
 */
const BATCH = new Uint32Array(4097);

function unpack(packed: Buffer | null): Buffer[] | null {
  if (packed === null) return null;
  const n = BATCH[0]!;
  const out = new Array<Buffer>(n);
  let offset = 0;
  for (let i = 0; i < n; i++) {
    const len = BATCH[i + 1]!;
    out[i] = packed.subarray(offset, offset + len);
    offset += len;
  }
  return out;
}

const COOKIE_OK: DtlsCookieCheck = Object.freeze({ ok: true });
const COOKIE_DROP: DtlsCookieCheck = Object.freeze({ ok: false, reply: null });

// --- Public classes --------------------------------------------------------------------------

/**
 * A certificate chain and key parsed once, to hand to many sessions
 * ({@link DtlsSession.setCertificate}), e.g. from a per-SNI cache.
 */
export class DtlsCertificate implements Disposable {
  /** @internal */
  readonly native: NativeCertificate;

  private constructor(native: NativeCertificate) {
    this.native = native;
  }

  /** Parses a PEM chain (leaf first) and its PEM key; throws `ERR_DTLS_CERTIFICATE` if they do not match. */
  static fromPem(cert: string | readonly string[], key: string): DtlsCertificate {
    const b = loadBinding();
    try {
      return new DtlsCertificate(new b.NativeCertificate(pemList(cert) ?? '', key));
    } catch (err) {
      rethrow(err, 'ERR_DTLS_CERTIFICATE');
    }
  }

  /** Releases the parsed certificate (sessions that use it keep their own reference). */
  destroy(): void {
    this.native.destroy();
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

/**
 * Configuration shared by sessions: role, certificates, trust, versions, ciphers, ALPN,
 * and for servers the cookie secret. Cheap to keep, costly to make (it parses PEM).
 */
export class DtlsContext implements Disposable {
  readonly role: DtlsRole;
  readonly #native: NativeContext;
  readonly #verifies: boolean;

  constructor(options: DtlsContextOptions) {
    const b = loadBinding();
    this.role = options.role;
    const verify = options.rejectUnauthorized ?? true;
    this.#verifies = options.role === 'client' && verify;
    const maxVersion = options.maxVersion ?? 'DTLSv1.2';
    const native: NativeContextOptions = {
      role: options.role,
      cert: pemList(options.cert),
      key: options.key,
      ca: pemList(options.ca) ?? (this.#verifies ? rootCertificates.join('\n') : undefined),
      verify,
      requestCert: options.requestCert ?? false,
      minVersion: options.minVersion ?? (maxVersion === 'DTLSv1' ? 'DTLSv1' : 'DTLSv1.2'),
      maxVersion,
      ciphers: options.ciphers,
      alpn: options.ALPNProtocols,
      cookieExchange: options.cookieExchange ?? true,
      pauseOnClientHello: options.pauseOnClientHello ?? false,
      keylog: options.keylog ?? false,
      mtu: options.mtu,
      mtuOverhead: options.mtuOverhead,
      initialRetransmitMs: options.initialRetransmitMs,
      maxRetransmitMs: options.maxRetransmitMs,
    };
    try {
      this.#native = new b.NativeContext(native);
    } catch (err) {
      rethrow(err, 'ERR_DTLS_CONTEXT');
    }
  }

  /** A new session of this context's role. A client session sends its ClientHello on `start()`. */
  createSession(options: DtlsSessionOptions = {}): DtlsSession {
    const b = loadBinding();
    const servername = options.servername;
    const checkHost =
      options.checkHost === false
        ? undefined
        : (options.checkHost ?? (this.#verifies ? servername : undefined));
    const native: NativeSessionOptions = {
      // RFC 6066: SNI carries host names only, never IP literals.
      servername: servername !== undefined && isIP(servername) === 0 ? servername : undefined,
      alpn: options.ALPNProtocols,
      checkHost,
      peer: options.peer,
      mtu: options.mtu,
      pauseOnClientHello: options.pauseOnClientHello,
      initialRetransmitMs: options.initialRetransmitMs,
      maxRetransmitMs: options.maxRetransmitMs,
    };
    try {
      return new DtlsSession(this.role, new b.NativeSession(this.#native, native), servername ?? null);
    } catch (err) {
      rethrow(err, 'ERR_DTLS_SESSION');
    }
  }

  /**
   * Server: checks a datagram from a peer that has no session yet, allocating nothing per
   * call (one reusable SSL per context runs `DTLSv1_listen`). `{ ok: true }`: a ClientHello
   * with a valid cookie for `peer`; create a session with the same `peer` and feed it this
   * datagram. `{ ok: false, reply }`: send `reply` (a HelloVerifyRequest) back, or drop
   * the datagram when `reply` is null (not a ClientHello).
   */
  statelessCookieCheck(datagram: Uint8Array, peer: string): DtlsCookieCheck {
    const r = this.#native.cookieCheck(datagram, peer);
    if (r === true) return COOKIE_OK;
    return r === null ? COOKIE_DROP : { ok: false, reply: r };
  }

  /** Starts a new cookie secret; cookies made with the previous one stay valid until the next rotation. */
  rotateCookieSecret(): void {
    this.#native.rotateCookieSecret();
  }

  /** Releases the context; sessions already made keep working. Safe to call twice. */
  destroy(): void {
    this.#native.destroy();
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

/**
 * One DTLS association, sans-IO. Made by {@link DtlsContext.createSession}.
 * Status getters (`isEstablished`, `clientHelloPending`, ...) read the status of the last
 * call and cost nothing.
 */
export class DtlsSession implements Disposable {
  readonly role: DtlsRole;
  readonly #native: NativeSession;
  readonly #servername: string | null;
  #status = 0;
  #destroyed = false;

  /** @internal Use {@link DtlsContext.createSession}. */
  constructor(role: DtlsRole, native: NativeSession, servername: string | null) {
    this.role = role;
    this.#native = native;
    this.#servername = servername;
    this.#status = native.flags();
  }

  /** The status bits of the last call ({@link DtlsStatus}). */
  get status(): number {
    return this.#status;
  }
  get isEstablished(): boolean {
    return (this.#status & DtlsStatus.ESTABLISHED) !== 0;
  }
  get clientHelloPending(): boolean {
    return (this.#status & DtlsStatus.CLIENT_HELLO) !== 0;
  }
  get peerClosed(): boolean {
    return (this.#status & DtlsStatus.PEER_CLOSED) !== 0;
  }
  get failed(): boolean {
    return (this.#status & DtlsStatus.FAILED) !== 0;
  }
  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Client: queues the ClientHello. Server: nothing to do (it waits for one). */
  start(): number {
    this.#status = this.#native.start();
    return this.#status;
  }

  /**
   * Feeds one UDP datagram. The bytes are only borrowed for the call. Garbage, truncated
   * or replayed datagrams are dropped the way DTLS drops them; a malformed handshake
   * message fails a handshake in progress (status FAILED), never an established session.
   */
  receive(datagram: Uint8Array): number {
    this.#status = this.#native.receive(datagram);
    return this.#status;
  }

  /**
   * The datagrams to send, oldest first, or null if none. They are views of one Buffer per
   * call (one allocation per batch, as Node's own Buffer pool does): keep one, keep the batch.
   */
  takeOutgoing(): Buffer[] | null {
    return unpack(this.#native.takeOutgoing(BATCH));
  }

  /** Milliseconds until the retransmission timer fires (0: now), or -1 if it is not running. */
  timeout(): number {
    return this.#native.timeout();
  }

  /** Call when the timer fires: retransmits the last flight if due (status OUTGOING). */
  onTimeout(): number {
    this.#status = this.#native.onTimeout();
    return this.#status;
  }

  /**
   * Encrypts one application message into one record (one datagram). At most 16384
   * bytes; keep to `maxPayload` to avoid IP fragmentation. Empty messages are not sent.
   * Throws `ERR_DTLS_WRITE` before the handshake completes, after close or failure.
   */
  write(data: Uint8Array): number {
    try {
      this.#status = this.#native.write(data);
    } catch (err) {
      this.#status = this.#native.flags();
      rethrow(err, 'ERR_DTLS_WRITE');
    }
    return this.#status;
  }

  /** The next application message received (one record, its own Buffer), or null. */
  read(): Buffer | null {
    return this.#native.read();
  }

  /** Every application message received so far, or null; views of one Buffer, as in `takeOutgoing()`. */
  readAll(): Buffer[] | null {
    return unpack(this.#native.readAll(BATCH));
  }

  /** Queues close_notify (if established) and refuses further writes; does not wait for the peer's. */
  close(): number {
    this.#status = this.#native.close();
    return this.#status;
  }

  /** Server: what the ClientHello carried; null before one was processed. */
  clientHello(): DtlsClientHello | null {
    return this.#native.clientHello();
  }

  /**
   * Server, while `clientHelloPending`: the certificate to present instead of the context's,
   * parsed already (a {@link DtlsCertificate}, e.g. from a per-SNI cache) or as PEM.
   */
  setCertificate(
    cert: DtlsCertificate | { readonly cert: string | readonly string[]; readonly key: string },
  ): void {
    const parsed = cert instanceof DtlsCertificate ? cert : DtlsCertificate.fromPem(cert.cert, cert.key);
    try {
      this.#native.setCertificate(parsed.native);
    } catch (err) {
      rethrow(err, 'ERR_DTLS_CERTIFICATE');
    } finally {
      if (parsed !== cert) parsed.destroy();
    }
  }

  /**
   * Server (while `clientHelloPending`): the protocols to accept, in preference order,
   * instead of the context's; e.g. the ALPN the upstream server chose. Client (before
   * `start()`): the protocols to offer.
   */
  setALPNProtocols(protocols: readonly string[]): void {
    try {
      this.#native.setAlpn(protocols);
    } catch (err) {
      rethrow(err, 'ERR_DTLS_ALPN');
    }
  }

  /** Server: goes on with a handshake paused on its ClientHello. */
  resume(): number {
    this.#status = this.#native.resume();
    return this.#status;
  }

  /** Largest datagram (UDP payload) for handshake flights from now on. */
  setMtu(mtu: number): void {
    this.#native.setMtu(mtu);
  }

  /** Largest application message that fits one datagram of the current MTU with the current cipher. */
  get maxPayload(): number {
    return this.#native.maxPayload();
  }

  /** Negotiated version, cipher, ALPN and SNI (nulls before the handshake completes). */
  handshake(): DtlsHandshakeInfo {
    const i = this.#native.info();
    return {
      version: i.version,
      cipher: i.cipher,
      alpn: i.alpn,
      sni: i.sni ?? (this.role === 'client' ? this.#servername : null),
      verifyError: i.verifyError,
      alertSent: i.alertSent,
      alertReceived: i.alertReceived,
    };
  }

  /**
   * Drop counters: datagrams and records lost because a queue was full (the driver is not
   * keeping up), and datagrams refused before OpenSSL saw them because they carried a
   * protected record too short to be genuine (OpenSSL 3 would end the session on them).
   */
  drops(): {
    readonly outgoing: number;
    readonly incoming: number;
    readonly records: number;
    readonly invalid: number;
  } {
    const i = this.#native.info();
    return {
      outgoing: i.outDropped,
      incoming: i.inDropped,
      records: i.recordsDropped,
      invalid: i.invalidDropped,
    };
  }

  /** The peer's certificates as DER, leaf first; empty if it sent none. */
  peerCertificates(): Buffer[] {
    return this.#native.peerCertificates();
  }

  /** The certificate we presented, as DER (the model's `mitmcert`), or null. */
  localCertificate(): Buffer | null {
    return this.#native.localCertificate();
  }

  /** Why the session failed, or null. */
  get error(): DtlsError | null {
    const f = this.#native.failure();
    if (!f) return null;
    const code: DtlsErrorCode = f.verifyError
      ? 'ERR_DTLS_CERT_VERIFY'
      : f.message.startsWith('handshake timed out')
        ? 'ERR_DTLS_TIMEOUT'
        : 'ERR_DTLS_HANDSHAKE';
    return new DtlsError(code, f.message, f.errors, f.sslError, f.verifyError);
  }

  /** NSS key log lines (`CLIENT_RANDOM ...`) produced since the last call, or null. */
  takeKeylog(): string[] | null {
    return this.#native.takeKeylog();
  }

  /** Frees the native session now (the GC would, later). Safe to call twice. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#native.destroy();
    this.#status = this.#native.flags();
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}
