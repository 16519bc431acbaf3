/**
 * The client side of QUIC: one endpoint (a connected socket of its own) and one session.
 * The Server model gets `timestampStart` before dialing; once the handshake is done,
 * `peername`, `sockname`, OPEN and every handshake field; on failure `error`, and the promise
 * rejects with a ConnectError carrying the model.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { ConnectionState, now, Server } from '../../connection/index.js';
import { ConnectError, describeSocketError, errorCode } from '../errors.js';
import type { ConnectOptions } from '../types.js';
import { quiche } from './binding.js';
import { newCid } from './cid.js';
import { clientConfig, DEFAULT_ALPN, DEFAULT_IDLE_TIMEOUT_MS } from './config.js';
import { QuicEndpoint } from './endpoint.js';
import { InitialObserver } from './observer.js';
import { QuicSession } from './session.js';

/** Handshake timeout when `timeout` is not given, milliseconds. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export interface QuicConnectOptions extends ConnectOptions {
  /** Source connection IDs we issue at most (spare ones let us be followed to a new path). */
  maxCids?: number;
}

/** Dials QUIC: resolves once the handshake is done. */
export async function connectQuic(options: QuicConnectOptions): Promise<QuicSession<Server>> {
  const { host, port, signal } = options;
  const conn = options.conn ?? new Server({ address: [host, port] });
  conn.transportProtocol = 'udp';
  conn.tls = true;
  conn.timestampStart = now();
  const fail = (code: string, message: string, cause?: unknown): ConnectError => {
    conn.error ??= message;
    conn.state = ConnectionState.CLOSED;
    conn.timestampEnd ??= now();
    return new ConnectError(code, conn.error, conn, { cause });
  };
  if (signal?.aborted) throw fail('ABORT_ERR', 'Connect aborted', signal.reason);

  let ip = host;
  if (isIP(host) === 0) {
    try {
      ip = (await lookup(host)).address;
    } catch (e) {
      throw fail(errorCode(e, 'ENOTFOUND'), describeSocketError(e as Error), e);
    }
  }
  const literal = isIP(host) !== 0;
  const sni = options.servername ?? (literal ? null : host);
  // QUIC needs ALPN (BoringSSL refuses a QUIC handshake without it)
  const alpn = options.ALPNProtocols?.length ? options.ALPNProtocols : [DEFAULT_ALPN];
  const verify = options.rejectUnauthorized !== false;
  conn.sni = sni;
  conn.alpnOffers = [...alpn];

  let endpoint: QuicEndpoint;
  try {
    endpoint = await QuicEndpoint.open({
      host: options.localAddress ?? (isIP(ip) === 6 ? '::' : '0.0.0.0'),
      port: options.localPort ?? 0,
      connectTo: { host: ip, port },
    });
  } catch (e) {
    throw fail(errorCode(e, 'ECONNECT'), describeSocketError(e as Error), e);
  }
  endpoint.closeWhenIdle = true;
  const maxCids = options.maxCids ?? 4;
  let session: QuicSession<Server>;
  try {
    const config = clientConfig({
      alpn,
      idleTimeoutMs: options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT_MS,
      activeCidLimit: Math.max(2, maxCids),
      keylog: options.keylog !== undefined,
      verify,
      ca: options.ca,
    });
    const scid = newCid();
    const engine = quiche().Connection.connect(sni, scid, endpoint.local, { host: ip, port }, config);
    session = new QuicSession<Server>({
      conn,
      engine,
      transport: endpoint,
      isServer: false,
      local: endpoint.local,
      peer: { host: ip, port },
      scid,
      observer: new InitialObserver(engine.destinationId()),
      keylog: options.keylog,
      maxCids,
      verifyIp: verify && sni === null ? ip : null,
      timeoutMessage: `Connection timed out (QUIC handshake with ${host}:${port}: no answer)`,
    });
  } catch (e) {
    await endpoint.close();
    throw fail('ERR_QUIC', `QUIC connect failed: ${(e as Error).message}`, e);
  }
  endpoint.add(session);
  conn.peername = [ip, port];
  conn.sockname = [endpoint.local.host, endpoint.local.port];

  return new Promise<QuicSession<Server>>((resolve, reject) => {
    const timeout = options.timeout ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      session.off('up', onUp);
      session.off('close', onClose);
      endpoint.socket.off('error', onSocketError);
    };
    const abandon = (code: string, message: string, cause?: unknown): void => {
      cleanup();
      conn.error ??= message;
      session.destroy();
      void endpoint.close();
      reject(fail(code, message, cause));
    };
    const onUp = (): void => {
      cleanup();
      if (signal) {
        const onLateAbort = (): void => session.destroy(new Error('Aborted'));
        signal.addEventListener('abort', onLateAbort, { once: true });
        session.once('close', () => signal.removeEventListener('abort', onLateAbort));
      }
      resolve(session);
    };
    const onClose = (): void => {
      cleanup();
      void endpoint.close();
      reject(fail('ERR_QUIC_HANDSHAKE', conn.error ?? 'QUIC handshake failed'));
    };
    const onSocketError = (err: Error): void =>
      abandon(errorCode(err, 'ECONNECT'), describeSocketError(err), err);
    const onAbort = (): void => abandon('ABORT_ERR', 'Connect aborted', signal?.reason);
    const timer = setTimeout(
      () =>
        abandon(
          'ETIMEDOUT',
          `Connection timed out (QUIC handshake with ${host}:${port} after ${timeout} ms)`,
        ),
      timeout,
    );
    session.once('up', onUp);
    session.once('close', onClose);
    endpoint.socket.on('error', onSocketError);
    signal?.addEventListener('abort', onAbort, { once: true });
    session.wake();
  });
}
