/**
 * The client side of QUIC: one endpoint (a connected socket of its own) and one session.
 * The Server model gets `timestampStart` before dialing; once the handshake is done,
 * `peername`, `sockname`, OPEN and every handshake field; on failure `error`, and the promise
 * rejects with a ConnectError carrying the model.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Server } from '../../connection/index.js';
import type { DatagramBackend, DatagramSocket } from '../datagram/index.js';
import { type Dial, dial, serverModel } from '../dial.js';
import { describeSocketError, errorCode } from '../errors.js';
import type { ConnectOptions } from '../types.js';
import { quiche } from './binding.js';
import { newCid } from './cid.js';
import { clientConfig, DEFAULT_ALPN, DEFAULT_IDLE_TIMEOUT_MS } from './config.js';
import { QuicEndpoint } from './endpoint.js';
import { InitialObserver } from './observer.js';
import { QuicSession } from './session.js';

/** The dial's deadline when `connectTimeout` is not given, milliseconds. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Options of `quic.connect`. */
export interface QuicConnectOptions extends ConnectOptions {
  /** Source connection IDs we issue at most (spare ones let us be followed to a new path). */
  maxCids?: number;
  /**
   * Dial over this socket instead of a connected one of our own (`localAddress`, `localPort`
   * ignored): a tunnel such as a SOCKS5 client's UDP association, whose `send` gets the
   * server's address with every datagram. Closed when the session ends.
   */
  socket?: DatagramSocket;
  /** Called with the endpoint's socket once it is connected, before anything is sent on it. */
  onSocket?: (socket: DatagramSocket) => void;
  /**
   * The socket underneath: `native` (the addon) or `dgram`. Default: `WIRELAYER_DATAGRAM`, else
   * native where it loads (Linux).
   */
  datagramBackend?: DatagramBackend;
}

/** What a QUIC connect sends, known before it dials (see `Driver.serverModel`). */
export function quicServerModel(
  options: Pick<QuicConnectOptions, 'host' | 'port' | 'conn' | 'servername' | 'ALPNProtocols'>,
): Server {
  return serverModel(options, {
    transportProtocol: 'udp',
    tls: true,
    sni: options.servername ?? (isIP(options.host) !== 0 ? null : options.host),
    // QUIC needs ALPN (BoringSSL refuses a QUIC handshake without it)
    alpnOffers: options.ALPNProtocols?.length ? options.ALPNProtocols : [DEFAULT_ALPN],
  });
}

/** Dials QUIC: resolves once the handshake is done; `connectTimeout` (default 10 s) bounds it all. */
export function connectQuic(options: QuicConnectOptions): Promise<QuicSession<Server>> {
  const { host, port } = options;
  const conn = quicServerModel(options);
  return dial(
    conn,
    {
      signal: options.signal,
      connectTimeout: options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS,
      timeoutMessage: (ms) => `Connection timed out (QUIC handshake with ${host}:${port} after ${ms} ms)`,
    },
    (d) => dialQuic(d, options),
  );
}

async function dialQuic(d: Dial, options: QuicConnectOptions): Promise<QuicSession<Server>> {
  const { host, port } = options;
  const conn = d.conn;
  let ip = host;
  if (isIP(host) === 0) {
    try {
      ip = (await d.step(lookup(host))).address;
    } catch (e) {
      throw d.fail(errorCode(e, 'ENOTFOUND'), describeSocketError(e as Error), e);
    }
  }
  const sni = conn.sni;
  const alpn = conn.alpnOffers;
  const verify = options.rejectUnauthorized !== false;

  const opening =
    options.socket !== undefined
      ? Promise.resolve(QuicEndpoint.over(options.socket))
      : QuicEndpoint.open({
          host: options.localAddress ?? (isIP(ip) === 6 ? '::' : '0.0.0.0'),
          port: options.localPort ?? 0,
          connectTo: { host: ip, port },
          backend: options.datagramBackend,
        });
  // an endpoint that opens after the dial failed is closed as soon as it is there
  d.onFail(async () => (await opening.catch(() => null))?.close());
  let endpoint: QuicEndpoint;
  try {
    endpoint = await d.step(opening);
  } catch (e) {
    throw d.fail(errorCode(e, 'ECONNECT'), describeSocketError(e as Error), e);
  }
  endpoint.closeWhenIdle = true;
  options.onSocket?.(endpoint.socket);
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
    throw d.fail('ERR_QUIC', `QUIC connect failed: ${(e as Error).message}`, e);
  }
  d.onFail(() => session.destroy());
  endpoint.add(session);
  // a short header for none of our IDs may be a Stateless Reset (RFC 9000, 10.3: its first
  // octets are random, its last 16 the server's token): quiche tells, given the datagram
  endpoint.onUnroutable((datagram, from) => {
    endpoint.stats.unroutable++;
    if ((datagram[0]! & 0x80) === 0 && !session.closed) session.receive(datagram, from.address, from.port);
  });
  conn.peername = [ip, port];
  conn.sockname = [endpoint.local.host, endpoint.local.port];

  return new Promise<QuicSession<Server>>((resolve, reject) => {
    const onSocketError = (err: Error): void =>
      reject(d.fail(errorCode(err, 'ECONNECT'), describeSocketError(err), err));
    session.once('up', () => {
      endpoint.socket.off('error', onSocketError);
      // ICMP errors once up: the session's idle timeout ends it if the peer is gone
      endpoint.socket.on('error', () => undefined);
      resolve(session);
    });
    session.once('close', () => {
      if (session.established) return;
      reject(d.fail(session.failureCode ?? 'ERR_QUIC_HANDSHAKE', conn.error ?? 'QUIC handshake failed'));
    });
    endpoint.socket.on('error', onSocketError);
    session.wake();
  });
}
