import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { LruMap } from '../../collections/lru-map.js';
import { ConnectionState, type Server } from '../../connection/index.js';
import { type Dial, dial, serverModel } from '../dial.js';
import { errorCode } from '../errors.js';
import { openUdp, type UdpSocketSession } from '../udp/connect.js';
import { DtlsContext, type DtlsContextOptions } from './engine.js';
import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  type DtlsConnectOptions,
  engineContextOptions,
  keylogSink,
} from './options.js';
import { DtlsLayerSession } from './session.js';

/** Client contexts by configuration: making one parses the CA bundle (Node's roots by default). */
// an evicted context keeps working for its sessions; the GC frees it with the last of them
const contexts = new LruMap<string, DtlsContext>(16);

function clientContext(options: DtlsContextOptions): DtlsContext {
  // hashed, so no private key text is kept as a map key
  const key = createHash('sha256').update(JSON.stringify(options)).digest('base64');
  return contexts.getOrSet(key, () => new DtlsContext(options));
}

/** What a DTLS connect sends, known before it dials (see `Driver.serverModel`). */
export function dtlsServerModel(
  options: Pick<DtlsConnectOptions, 'host' | 'port' | 'conn' | 'servername' | 'ALPNProtocols'>,
): Server {
  const servername = options.servername ?? (isIP(options.host) === 0 ? options.host : undefined);
  return serverModel(options, {
    transportProtocol: 'udp',
    tls: true,
    sni: servername !== undefined && isIP(servername) === 0 ? servername : null,
    alpnOffers: options.ALPNProtocols ?? [],
  });
}

/**
 * Dials DTLS: a connected UDP socket (see `connectUdp`), then the handshake over it. Resolves once
 * established, the Server model filled from what the engine negotiated (`tlsVersion`, IANA
 * `cipher`, `alpn`, `certificateList`, `timestampTlsSetup`); `sni` is what we sent (the host
 * unless it is an IP literal, or `servername`), `alpnOffers` what we offered.
 *
 * The peer is verified by default: its chain against `ca` (Node's roots without it), and its
 * name against `servername`, else the host (DNS name or IP). Rejects with a ConnectError whose
 * `code` is the OS's (ECONNREFUSED: an ICMP port unreachable), the engine's (`ERR_DTLS_CERT_VERIFY`,
 * `ERR_DTLS_HANDSHAKE`, ...), `ETIMEDOUT` after `connectTimeout` (default 10 s) or `ABORT_ERR`,
 * and `conn.error` normalised as mitmproxy does ("Certificate verify failed: ...").
 */
export function connectDtls(options: DtlsConnectOptions): Promise<DtlsLayerSession<Server>> {
  const { host, port } = options;
  const conn = dtlsServerModel(options);
  return dial(
    conn,
    {
      signal: options.signal,
      connectTimeout: options.connectTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      timeoutMessage: (ms) =>
        conn.state === ConnectionState.CLOSED
          ? `Connection timed out (connect ${host}:${port} after ${ms} ms)`
          : `The remote server did not complete the DTLS handshake. (handshake timed out after ${ms} ms)`,
    },
    async (d) => {
      const context = dialContext(d, options);
      const flow = await openUdp(d, options, undefined);
      return handshake(d, options, flow, context);
    },
  );
}

/** The dial's engine context, or the dial failed with the option's fault. */
function dialContext(d: Dial, options: DtlsConnectOptions): DtlsContext {
  try {
    return clientContext(engineContextOptions('client', options));
  } catch (err) {
    throw d.fail(
      errorCode(err, 'ERR_DTLS_CONTEXT'),
      `DTLS configuration refused: ${(err as Error).message}`,
      err,
    );
  }
}

/**
 * Runs the DTLS handshake over a UDP session already connected (a proxy's server leg, whose
 * `serverConnected` comes before `tlsStartServer`): its Server model gets `tls`, `sni` and
 * `alpnOffers` now and the handshake fields once done, keeping its addresses and
 * `timestampStart`. Same guard as `connectDtls`; a failed handshake closes the UDP session.
 */
export function upgradeDtls(
  udp: UdpSocketSession,
  options: DtlsConnectOptions,
): Promise<DtlsLayerSession<Server>> {
  const conn = dtlsServerModel({ ...options, conn: udp.conn });
  const started = conn.timestampStart;
  return dial(
    conn,
    {
      signal: options.signal,
      connectTimeout: options.connectTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      timeoutMessage: (ms) =>
        `The remote server did not complete the DTLS handshake. (handshake timed out after ${ms} ms)`,
    },
    (d) => {
      // the dial began with the UDP connect, not now
      conn.timestampStart = started;
      d.onFail(() => udp.destroy());
      return handshake(d, options, udp, dialContext(d, options));
    },
  );
}

/** The DTLS step: the handshake over the connected UDP session. */
function handshake(
  d: Dial,
  options: DtlsConnectOptions,
  flow: UdpSocketSession,
  context: DtlsContext,
): Promise<DtlsLayerSession<Server>> {
  const conn = d.conn;
  // the OS's code of a socket error (ECONNREFUSED from an ICMP port unreachable)
  let socketCode: string | null = null;
  flow.socket.on('error', (err: Error) => {
    socketCode ??= errorCode(err, 'ECONNECT');
  });
  const verifies = options.rejectUnauthorized ?? true;
  const servername = options.servername ?? (isIP(options.host) === 0 ? options.host : undefined);
  const engine = context.createSession({
    servername,
    checkHost: verifies ? (options.servername ?? options.host) : false,
  });
  // the dial's deadline is the handshake's: the session keeps none of its own
  const session = new DtlsLayerSession<Server>(conn, flow, engine, {
    handshakeTimeout: 0,
    keylog: keylogSink(options.keylog),
    receiveQueue: options.receiveQueue,
  });
  d.onFail(() => {
    session.destroy();
    return session.whenClosed();
  });
  return new Promise<DtlsLayerSession<Server>>((resolve, reject) => {
    session.once('up', () => resolve(session));
    session.once('close', () => {
      if (session.established) return;
      reject(
        d.fail(
          socketCode ?? session.failureCode ?? 'ERR_DTLS_HANDSHAKE',
          conn.error ?? 'DTLS handshake failed',
          session.failureCause ?? engine.error ?? undefined,
        ),
      );
    });
    session.begin();
  });
}
