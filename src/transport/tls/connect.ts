import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { createSecureContext, type SecureContext, connect as tlsConnect } from 'node:tls';
import { LruMap } from '../../collections/lru-map.js';
import type { Server } from '../../connection/index.js';
import { type Dial, dial, serverModel } from '../dial.js';
import { errorCode } from '../errors.js';
import { keylogSink } from '../keylog.js';
import { openTcp } from '../tcp/connect.js';
import type { TcpSession } from '../tcp/session.js';
import { describeServerTlsError } from './errors.js';
import { fillFromHandshake } from './model.js';
import { nodeSecurityOptions, type TlsConnectOptions } from './options.js';
import { TlsSession } from './session.js';

/** Client contexts kept (16, LRU): building one parses the CA list, a sixth of a handshake. */
const contexts = new LruMap<string, SecureContext>(16);

/**
 * Digests of CA lists by the list itself, with the entries they were taken from: a proxy passes
 * the same list (Node's ~140 roots and more) on every dial, and hashing it cost 5% of a proxied
 * handshake. An entry changed in place (compared by reference: cheap for the same strings) is hashed again.
 */
const listDigests = new WeakMap<
  readonly (string | Buffer)[],
  { entries: (string | Buffer)[]; digest: string }
>();

type Material = string | Buffer | readonly (string | Buffer)[] | undefined;

/** A digest of certificate material, so no private key text is kept as a map key. */
function digest(v: Material): string {
  if (v === undefined) return '';
  if (!Array.isArray(v))
    return createHash('sha256')
      .update(v as string | Buffer)
      .digest('base64');
  const list = v as readonly (string | Buffer)[];
  const known = listDigests.get(list);
  if (known && known.entries.length === list.length && known.entries.every((one, i) => one === list[i]))
    return known.digest;
  const hash = createHash('sha256');
  for (const one of list) hash.update(one).update('\0');
  const d = hash.digest('base64');
  listDigests.set(list, { entries: [...list], digest: d });
  return d;
}

/**
 * The client SecureContext for these options, made once per distinct set and reused. The key is
 * taken from the caller's options (`given`), whose CA list keeps its identity from dial to dial.
 */
function clientContext(
  given: TlsConnectOptions,
  security: ReturnType<typeof nodeSecurityOptions>,
): SecureContext {
  const key = [
    security.minVersion,
    security.maxVersion,
    security.ciphers,
    digest(given.ca),
    digest(security.cert),
    digest(security.key),
  ].join('\0');
  return contexts.getOrSet(key, () => createSecureContext(security));
}

/** The dial's client context, or the dial failed with the option's fault. */
function dialContext(d: Dial, options: TlsConnectOptions): SecureContext {
  try {
    return clientContext(options, nodeSecurityOptions(options));
  } catch (err) {
    // a version outside TLS is our RangeError; unreadable certificates or keys carry OpenSSL's code
    const code =
      err instanceof RangeError ? 'ERR_TLS_INVALID_PROTOCOL_VERSION' : errorCode(err, 'ERR_TLS_OPTIONS');
    throw d.fail(code, (err as Error).message, err);
  }
}

/** What a TLS connect sends, known before it dials (see `Driver.serverModel`). */
export function tlsServerModel(
  options: Pick<TlsConnectOptions, 'host' | 'port' | 'conn' | 'servername' | 'ALPNProtocols'>,
): Server {
  return serverModel(options, {
    transportProtocol: 'tcp',
    tls: true,
    // no SNI for an IP literal unless asked for (RFC 6066 3)
    sni: options.servername ?? (isIP(options.host) ? null : options.host),
    alpnOffers: options.ALPNProtocols ?? [],
  });
}

/**
 * Dials TLS: a TCP connect (the Server model gets its TCP fields), then the TLS handshake over
 * it, verifying the server unless `rejectUnauthorized: false`. Resolves once the handshake is
 * done and the model filled from it; rejects with a ConnectError whose `conn.error` is
 * mitmproxy's normalised message. `connectTimeout` bounds both together.
 */
export function connectTls(options: TlsConnectOptions): Promise<TlsSession<Server>> {
  const { host, port } = options;
  const conn = tlsServerModel(options);
  return dial(
    conn,
    {
      signal: options.signal,
      connectTimeout: options.connectTimeout,
      timeoutMessage: (ms) =>
        conn.timestampTcpSetup === null
          ? `Connection timed out (connect ETIMEDOUT ${host}:${port} after ${ms} ms)`
          : `TLS handshake timed out (${host}:${port} after ${ms} ms)`,
    },
    async (d) => {
      const secureContext = dialContext(d, options);
      const tcp = await openTcp(d, options, 'tls');
      return handshake(d, options, tcp, secureContext);
    },
  );
}

/**
 * Runs the TLS handshake over a TCP session already connected (a proxy's server leg, dialed
 * before the client's ClientHello arrived): the session's Server model gets `tls`, `sni` and
 * `alpnOffers` now and the handshake fields once done, keeping its TCP fields and
 * `timestampStart`. Same guard as `connectTls` (`connectTimeout`, `signal`, ConnectError); a
 * failed handshake destroys the TCP session.
 */
export function upgradeTls(tcp: TcpSession<Server>, options: TlsConnectOptions): Promise<TlsSession<Server>> {
  const conn = tlsServerModel({ ...options, conn: tcp.conn });
  const started = conn.timestampStart;
  return dial(
    conn,
    {
      signal: options.signal,
      connectTimeout: options.connectTimeout,
      timeoutMessage: (ms) => `TLS handshake timed out (${options.host}:${options.port} after ${ms} ms)`,
    },
    (d) => {
      // the dial began with the TCP connect, not now
      conn.timestampStart = started;
      d.onFail(() => tcp.destroy());
      return handshake(d, options, tcp, dialContext(d, options));
    },
  );
}

/** The TLS step: the handshake over the connected TCP session. */
function handshake(
  d: Dial,
  options: TlsConnectOptions,
  tcp: TcpSession<Server>,
  secureContext: SecureContext,
): Promise<TlsSession<Server>> {
  const conn = d.conn;
  const session = new TlsSession('tls', conn, tcp);
  d.onFail(() => {
    session.destroy();
    return session.whenClosed();
  });
  const keylog = keylogSink(options.keylog);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      secureContext,
      socket: tcp.stream,
      host: options.host,
      servername: conn.sni ?? undefined,
      ALPNProtocols: options.ALPNProtocols ? [...options.ALPNProtocols] : undefined,
      rejectUnauthorized: options.rejectUnauthorized ?? true,
    });
    if (keylog) socket.on('keylog', (line) => keylog(line, conn));
    session.attachTls(socket);
    const onError = (err: Error): void =>
      reject(d.fail(errorCode(err, 'ERR_TLS'), describeServerTlsError(err), err));
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      socket.off('error', onError);
      fillFromHandshake(conn, socket);
      session.secured();
      resolve(session);
    });
  });
}
