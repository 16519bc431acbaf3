import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { createSecureContext, type SecureContext, connect as tlsConnect } from 'node:tls';
import { LruMap } from '../../collections/lru-map.js';
import { ConnectionState, Server } from '../../connection/index.js';
import { ConnectError, errorCode } from '../errors.js';
import { keylogSink } from '../keylog.js';
import { connectTcp } from '../tcp/connect.js';
import { describeServerTlsError } from './errors.js';
import { fillFromHandshake } from './model.js';
import { nodeSecurityOptions, type TlsConnectOptions } from './options.js';
import { TlsSession } from './session.js';

/** Client contexts kept (16, LRU): building one parses the CA list, a sixth of a handshake. */
const contexts = new LruMap<string, SecureContext>(16);

/** The client SecureContext for these options, made once per distinct set and reused. */
function clientContext(security: ReturnType<typeof nodeSecurityOptions>): SecureContext {
  // a digest of the material, so no private key text is kept as a map key
  const hash = createHash('sha256').update(
    `${security.minVersion}\0${security.maxVersion}\0${security.ciphers}`,
  );
  const add = (v: string | Buffer | (string | Buffer)[] | undefined): void => {
    if (Array.isArray(v)) for (const one of v) add(one);
    else if (v !== undefined) hash.update('\0').update(v);
    hash.update('\u0001');
  };
  add(security.ca);
  add(security.cert);
  add(security.key);
  return contexts.getOrSet(hash.digest('base64'), () => createSecureContext(security));
}

/**
 * Dials TLS: a TCP connect (the Server model gets its TCP fields), then the TLS handshake over
 * it, verifying the server unless `rejectUnauthorized: false`. Resolves once the handshake is
 * done and the model filled from it; rejects with a ConnectError whose `conn.error` is
 * mitmproxy's normalised message.
 */
export async function connectTls(options: TlsConnectOptions): Promise<TlsSession<Server>> {
  const { host, port, signal } = options;
  const conn = options.conn ?? new Server({ address: [host, port] });
  conn.tls = true;
  // no SNI for an IP literal unless asked for (RFC 6066 3)
  const sni = options.servername ?? (isIP(host) ? null : host);
  conn.sni = sni;
  conn.alpnOffers = [...(options.ALPNProtocols ?? [])];
  let secureContext: SecureContext;
  try {
    secureContext = clientContext(nodeSecurityOptions(options));
  } catch (err) {
    conn.timestampStart ??= Date.now() / 1000;
    conn.error = (err as Error).message;
    conn.state = ConnectionState.CLOSED;
    // a version outside TLS is our RangeError; unreadable certificates or keys carry OpenSSL's code
    const code =
      err instanceof RangeError ? 'ERR_TLS_INVALID_PROTOCOL_VERSION' : errorCode(err, 'ERR_TLS_OPTIONS');
    throw new ConnectError(code, conn.error, conn, { cause: err });
  }
  const started = Date.now();
  const tcp = await connectTcp({ ...options, conn });
  const session = new TlsSession('tls', conn, tcp);
  const keylog = keylogSink(options.keylog);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      secureContext,
      socket: tcp.stream,
      host,
      servername: sni ?? undefined,
      ALPNProtocols: options.ALPNProtocols ? [...options.ALPNProtocols] : undefined,
      rejectUnauthorized: options.rejectUnauthorized ?? true,
    });
    if (keylog) socket.on('keylog', (line) => keylog(line, conn));
    session.attachTls(socket);
    let settled = false;
    const fail = (code: string, message: string, cause?: unknown): void => {
      if (settled) return;
      settled = true;
      cleanup();
      session.fail(message);
      void session.whenClosed().then(() => reject(new ConnectError(code, message, conn, { cause })));
    };
    const onError = (err: Error): void => fail(errorCode(err, 'ERR_TLS'), describeServerTlsError(err), err);
    const onAbort = (): void => fail('ABORT_ERR', 'Connect aborted', signal?.reason);
    const remaining = options.timeout === undefined ? undefined : options.timeout - (Date.now() - started);
    const timer =
      remaining === undefined
        ? undefined
        : setTimeout(
            () => fail('ETIMEDOUT', `TLS handshake timed out (${host}:${port} after ${options.timeout} ms)`),
            Math.max(0, remaining),
          );
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
    };
    socket.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('secureConnect', () => {
      if (settled) return;
      settled = true;
      cleanup();
      fillFromHandshake(conn, socket);
      session.secured();
      resolve(session);
    });
  });
}
