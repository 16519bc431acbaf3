import type { X509Certificate } from 'node:crypto';
import { X509Certificate as X509 } from 'node:crypto';
import type { Server as NetServer, Socket } from 'node:net';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import { CertificateAuthority, CertStore } from '../../certs/index.js';
import { LruMap } from '../../collections/lru-map.js';
import { type Address, type Client, Server } from '../../connection/index.js';
import { cipherSuiteName } from '../../handshake/ciphers.js';
import type { ClientHello } from '../../handshake/tls/client-hello.js';
import type { ServerHello } from '../../handshake/tls/server-hello.js';
import { TLS1_3_VERSION, tlsVersionFromWire } from '../../handshake/versions.js';
import { describeHookFailure, describeSocketError, ERR_CLIENT_HELLO_HOOK, errorCode } from '../errors.js';
import { type KeylogSink, keylogSink } from '../keylog.js';
import { BaseListener } from '../listener.js';
import { acceptedClient, bindTcpServer } from '../tcp/accept.js';
import { connectTcp } from '../tcp/connect.js';
import { TcpSession } from '../tcp/session.js';
import { describeBadClientHello, describeClientTlsError } from './errors.js';
import { fillFromHandshake } from './model.js';
import { ServerHelloObserver } from './observe.js';
import {
  type ClientHelloAnswer,
  type ClientHelloCertificate,
  type ClientHelloRefusal,
  nodeSecurityOptions,
  type PassthroughTarget,
  type TlsListenOptions,
} from './options.js';
import { ClientHelloPeek } from './peek.js';
import { TlsSession } from './session.js';

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
const DEFAULT_DETECT_TIMEOUT_MS = 2_000;
/** Secure contexts kept for generated leaves and hook-supplied certificates. */
const CONTEXT_CACHE = 256;

interface Presented {
  context: SecureContext;
  cert: X509Certificate;
  /** The hook's ALPN list for this connection, replacing the listener's. */
  ALPNProtocols?: readonly string[];
}

/**
 * Accepts TCP connections and runs TLS over them. Per connection: `start` at TCP accept (a
 * Client model, OPEN), the ClientHello read (however it is split) and parsed into `sni` and
 * `alpnOffers`, the optional ClientHello hook asked, then the handshake (or a passthrough, or
 * with `detect` plain TCP); `session` once up, `sessionError` if it failed, with `conn.error`
 * set. Passed-through connections are announced with `passthrough` (session, Server model).
 */
export class TlsListener extends BaseListener<TlsSession<Client>> {
  readonly #address: Address;
  readonly #keylog: KeylogSink | null;
  readonly #configured: Presented | null;
  readonly #contexts = new LruMap<unknown, Presented>(CONTEXT_CACHE);
  readonly #security: ReturnType<typeof nodeSecurityOptions>;
  #certs: CertStore | null;
  readonly #passthroughs = new Set<TcpSession<Server>>();

  private constructor(
    private readonly server: NetServer,
    address: Address,
    private readonly options: TlsListenOptions,
    certs: CertStore | null,
  ) {
    super('tls', options.signal);
    this.#address = address;
    this.#keylog = keylogSink(options.keylog);
    this.#security = nodeSecurityOptions(options);
    this.#certs = certs;
    this.#configured =
      options.cert !== undefined && options.key !== undefined
        ? this.#present(options.cert, options.key)
        : null;
    server.on('connection', (socket) => this.#accept(socket));
    server.on('error', (err) => this.socketError(err));
  }

  /**
   * Binds (default 127.0.0.1, port 0) and resolves once listening. Without `cert` and `key`, the
   * CA that signs the leaves is read (or made, the first time) here, not during a handshake.
   */
  static async listen(options: TlsListenOptions = {}): Promise<TlsListener> {
    options.signal?.throwIfAborted();
    // bad versions, ciphers, CAs and unreadable certificates fail here, before anything is bound
    createSecureContext({ ...nodeSecurityOptions(options), cert: options.cert, key: options.key });
    const own = options.cert !== undefined && options.key !== undefined;
    const certs =
      options.certs ?? (own ? null : new CertStore(await CertificateAuthority.open(options.confdir)));
    const { server, address } = await bindTcpServer(options);
    return new TlsListener(server, address, options, certs);
  }

  get address(): Address {
    return this.#address;
  }

  /** Leaves for clients when the listener has no `cert`/`key` of its own (the CA of `confdir`). */
  get certs(): CertStore {
    this.#certs ??= new CertStore(CertificateAuthority.load(this.options.confdir));
    return this.#certs;
  }

  #present(
    cert: string | Buffer,
    key: string | Buffer,
    settings?: Pick<ClientHelloCertificate, 'minVersion' | 'maxVersion' | 'ciphers'>,
  ): Presented {
    const own =
      settings === undefined
        ? {}
        : nodeSecurityOptions({
            minVersion: settings.minVersion,
            maxVersion: settings.maxVersion,
            ciphers: settings.ciphers,
          });
    return {
      context: createSecureContext({ ...this.#security, ...own, cert, key }),
      cert: new X509(cert),
    };
  }

  #cached(key: unknown, make: () => Presented): Presented {
    return this.#contexts.getOrSet(key, make);
  }

  /** The certificate for a client: the hook's, the listener's own, or a leaf for the SNI (else the address reached). */
  #choose(answer: ClientHelloAnswer, client: Client): Presented {
    if (answer && 'cert' in answer) {
      const { cert, key, minVersion, maxVersion, ciphers } = answer;
      // by content, certificate and key both: a hook may read its files anew for every client
      const text = (v: string | Buffer): string => (typeof v === 'string' ? v : v.toString('latin1'));
      const presented = this.#cached(
        `hook:${text(cert)}\0${text(key)}\0${minVersion}\0${maxVersion}\0${ciphers}`,
        () => this.#present(cert, key, answer),
      );
      return answer.ALPNProtocols === undefined
        ? presented
        : { ...presented, ALPNProtocols: answer.ALPNProtocols };
    }
    if (this.#configured) return this.#configured;
    const name = client.sni ?? client.sockname[0].replace(/^::ffff:/, '');
    return this.#cached(`leaf:${name.toLowerCase()}`, () => {
      const leaf = this.certs.get(name);
      return {
        context: createSecureContext({ ...this.#security, cert: leaf.certPem, key: leaf.keyPem }),
        cert: leaf.cert,
      };
    });
  }

  #accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const client = acceptedClient(socket, this.options.proxyMode, !this.options.detect);
    if (client === null) return;
    const session = new TlsSession('tls', client, new TcpSession('tls', client, socket));
    this.sessionStarted(session);
    const handshakeTimeout = this.options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    const preamble = this.options.preamble;
    if (preamble === undefined) {
      this.#peek(session, socket, performance.now() + handshakeTimeout);
      return;
    }
    preamble(session).then(
      (go) => {
        if (!go || session.closed) return;
        this.#peek(session, socket, performance.now() + handshakeTimeout);
        // the preamble paused the socket to give back what it read beyond its end
        socket.resume();
      },
      (err: unknown) =>
        this.#fail(
          session,
          'ERR_TLS_PREAMBLE',
          `The preamble failed: ${(err as Error)?.message ?? err}`,
          err,
        ),
    );
  }

  /** Reads the ClientHello; `deadline` (performance.now() ms) ends the whole handshake. */
  #peek(session: TlsSession<Client>, socket: Socket, deadline: number): void {
    const detect = this.options.detect ?? false;
    const peek = new ClientHelloPeek(detect);
    const handshakeTimeout = this.options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const stop = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
    };
    // a reset before the handshake (or the passthrough) starts, while a hook runs too
    const onError = (err: Error): void => {
      stop();
      release();
      this.#fail(session, errorCode(err, 'ECONNRESET'), describeSocketError(err), err);
    };
    const release = (): void => {
      socket.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      const r = peek.push(chunk);
      if (r.kind === 'need-more') return;
      stop();
      if (r.kind === 'hello') {
        void this.#hello(session, socket, r.hello, r.bytes, deadline, release);
        return;
      }
      release();
      if (r.kind === 'plain') {
        socket.unshift(r.bytes);
        session.plain();
        this.sessionUp(session);
      } else {
        this.#fail(session, 'ERR_TLS_CLIENT_HELLO', describeBadClientHello(r.bytes, r.reason));
      }
    };
    const onEnd = (): void => {
      stop();
      release();
      this.#fail(
        session,
        'ERR_TLS_CLOSED',
        peek.length === 0
          ? 'The client closed the connection before sending a ClientHello.'
          : describeBadClientHello(peek.bytes(), 'connection closed inside the ClientHello'),
      );
    };
    const onTimeout = (): void => {
      release();
      if (detect && peek.length === 0) {
        // a client that waits for us to speak first: a server-first plain protocol
        stop();
        session.plain();
        this.sessionUp(session);
        return;
      }
      stop();
      this.#fail(
        session,
        'ETIMEDOUT',
        `TLS handshake timed out after ${handshakeTimeout} ms (no complete ClientHello)`,
      );
    };
    timer = setTimeout(
      onTimeout,
      detect ? (this.options.detectTimeout ?? DEFAULT_DETECT_TIMEOUT_MS) : handshakeTimeout,
    );
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    session.once('close', () => clearTimeout(timer));
  }

  async #hello(
    session: TlsSession<Client>,
    socket: Socket,
    hello: ClientHello,
    bytes: Buffer,
    deadline: number,
    release: () => void,
  ): Promise<void> {
    const client = session.conn;
    client.tls = true;
    client.sni = hello.sni;
    client.alpnOffers = [...hello.alpnProtocols];
    let answer: ClientHelloAnswer;
    const hook = this.options.clientHello;
    if (hook) {
      try {
        answer = await hook(hello, client);
      } catch (err) {
        release();
        this.#fail(session, ERR_CLIENT_HELLO_HOOK, describeHookFailure(err), err);
        return;
      }
      // a reset while the hook ran was reported by the peek's error handler
      if (session.closed) return;
    }
    if (answer && 'passthrough' in answer) {
      await this.#passthrough(session, socket, bytes, answer.passthrough, release);
      return;
    }
    release();
    if (answer && 'refuse' in answer) {
      this.#refuse(session, socket, answer.refuse);
      return;
    }
    let presented: Presented;
    try {
      presented = this.#choose(answer, client);
    } catch (err) {
      this.#fail(
        session,
        'ERR_TLS_CERTIFICATE',
        `No certificate for ${client.sni ?? 'the client'}: ${(err as Error).message}`,
        err,
      );
      return;
    }
    this.#handshake(session, socket, bytes, presented, deadline);
  }

  #handshake(
    session: TlsSession<Client>,
    socket: Socket,
    bytes: Buffer,
    presented: Presented,
    deadline: number,
  ): void {
    const client = session.conn;
    // the engine reads the ClientHello we peeked first (TLSSocket takes what the socket holds)
    socket.unshift(bytes);
    const alpn = presented.ALPNProtocols ?? this.options.ALPNProtocols;
    const tls = new TLSSocket(socket, {
      isServer: true,
      secureContext: presented.context,
      // an empty list selects no protocol: no ALPN extension in our answer
      ALPNProtocols: alpn && alpn.length > 0 ? [...alpn] : undefined,
      requestCert: false,
      rejectUnauthorized: false,
    });
    const keylog = this.#keylog;
    if (keylog) tls.on('keylog', (line: Buffer) => keylog(line, client));
    session.attachTls(tls);
    const handshakeTimeout = this.options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    const timer = setTimeout(
      () => this.#fail(session, 'ETIMEDOUT', `TLS handshake timed out after ${handshakeTimeout} ms`),
      Math.max(0, deadline - performance.now()),
    );
    const onError = (err: Error): void => {
      clearTimeout(timer);
      this.#fail(session, errorCode(err, 'ERR_TLS'), describeClientTlsError(err, client.sni), err);
    };
    tls.once('error', onError);
    session.once('close', () => clearTimeout(timer));
    tls.once('secure', () => {
      clearTimeout(timer);
      tls.off('error', onError);
      fillFromHandshake(client, tls);
      client.mitmcert = presented.cert;
      session.secured();
      this.sessionUp(session);
    });
  }

  async #passthrough(
    session: TlsSession<Client>,
    socket: Socket,
    bytes: Buffer,
    target: PassthroughTarget,
    release: () => void,
  ): Promise<void> {
    const client = session.conn;
    const conn = target.upstream?.conn ?? new Server({ address: [target.host, target.port] });
    conn.tls = true;
    conn.sni = client.sni;
    conn.alpnOffers = client.alpnOffers;
    let upstream: TcpSession<Server>;
    try {
      upstream =
        target.upstream ??
        (await connectTcp({
          host: target.host,
          port: target.port,
          conn,
          connectTimeout: this.options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
        }));
    } catch (err) {
      release();
      this.#fail(
        session,
        errorCode(err, 'ECONNECT'),
        `Passthrough to ${target.host}:${target.port} failed: ${(err as Error).message}`,
        err,
      );
      return;
    }
    release();
    if (session.closed) {
      upstream.destroy();
      return;
    }
    this.#passthroughs.add(upstream);
    upstream.once('close', () => this.#passthroughs.delete(upstream));
    session.passthrough(upstream);
    const observer = new ServerHelloObserver();
    const onUpstreamData = (chunk: Buffer): void => {
      const r = observer.push(chunk);
      if (r.kind === 'need-more') return;
      upstream.stream.off('data', onUpstreamData);
      if (r.kind === 'server-hello') fillFromServerHello([client, conn], r.hello);
      this.emit('passthrough', session, conn);
    };
    upstream.stream.on('data', onUpstreamData);
    upstream.stream.write(bytes);
    socket.pipe(upstream.stream);
    upstream.stream.pipe(socket);
    socket.resume();
  }

  /** A hook refused the client: the alert (if any) goes out before the connection is dropped. */
  #refuse(session: TlsSession<Client>, socket: Socket, refusal: ClientHelloRefusal): void {
    const fail = (): void => this.#fail(session, refusal.code, refusal.message);
    if (refusal.alert === undefined || socket.destroyed) {
      fail();
      return;
    }
    // a plaintext fatal alert record (level 2); the record version TLS 1.2's, as TLS 1.3's are
    const record = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, refusal.alert & 0xff]);
    // the session fails (and the socket is dropped) once the alert has left
    socket.end(record, fail);
    socket.once('error', fail);
  }

  #fail(session: TlsSession<Client>, code: string, message: string, cause?: unknown): void {
    if (session.closed || session.established) return;
    session.fail(message);
    this.sessionFailed(session, code, cause);
  }

  protected stopAccepting(): Promise<void> {
    for (const upstream of this.#passthroughs) upstream.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The models of a passed-through connection, from the ServerHello seen go by. */
function fillFromServerHello(conns: readonly (Client | Server)[], hello: ServerHello): void {
  for (const conn of conns) {
    conn.tlsVersion = tlsVersionFromWire(hello.version);
    conn.cipher = cipherSuiteName(hello.cipherSuite);
    // TLS 1.3 sends the chosen ALPN encrypted: unknown (null) to an observer
    conn.alpn = hello.version === TLS1_3_VERSION ? null : (hello.alpn ?? '');
  }
}
