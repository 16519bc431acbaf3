import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { LruMap } from '../../collections/lru-map.js';
import { ConnectionState, now, Server } from '../../connection/index.js';
import { ConnectError, errorCode } from '../errors.js';
import { connectUdp, type UdpSocketSession } from '../udp/connect.js';
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

/**
 * Dials DTLS: a connected UDP socket (see `connectUdp`), then the handshake over it. Resolves once
 * established, the Server model filled from what the engine negotiated (`tlsVersion`, IANA
 * `cipher`, `alpn`, `certificateList`, `timestampTlsSetup`); `sni` is what we sent (the host
 * unless it is an IP literal, or `servername`), `alpnOffers` what we offered.
 *
 * The peer is verified by default: its chain against `ca` (Node's roots without it), and its
 * name against `servername`, else the host (DNS name or IP). Rejects with a ConnectError whose
 * `code` is the OS's (ECONNREFUSED: an ICMP port unreachable), the engine's (`ERR_DTLS_CERT_VERIFY`,
 * `ERR_DTLS_HANDSHAKE`, ...), `ETIMEDOUT` after `timeout` (default 10 s) or `ABORT_ERR`, and
 * `conn.error` normalised as mitmproxy does ("Certificate verify failed: ...").
 */
export async function connectDtls(options: DtlsConnectOptions): Promise<DtlsLayerSession<Server>> {
  const { host, port, signal } = options;
  const conn = options.conn ?? new Server({ address: [host, port] });
  conn.tls = true;
  const servername = options.servername ?? (isIP(host) === 0 ? host : undefined);
  conn.sni = servername !== undefined && isIP(servername) === 0 ? servername : null;
  conn.alpnOffers = [...(options.ALPNProtocols ?? [])];

  let context: DtlsContext;
  try {
    context = clientContext(engineContextOptions('client', options));
  } catch (err) {
    conn.timestampStart ??= now();
    conn.error = `DTLS configuration refused: ${(err as Error).message}`;
    conn.state = ConnectionState.CLOSED;
    conn.timestampEnd ??= now();
    throw new ConnectError(errorCode(err, 'ERR_DTLS_CONTEXT'), conn.error, conn, { cause: err });
  }

  const { probe: _probe, ...udpOptions } = options as DtlsConnectOptions & { probe?: Uint8Array };
  const flow: UdpSocketSession = await connectUdp({ ...udpOptions, conn });
  // the OS's code of a socket error (ECONNREFUSED from an ICMP port unreachable)
  let socketCode: string | null = null;
  flow.socket.on('error', (err: Error) => {
    socketCode ??= errorCode(err, 'ECONNECT');
  });

  const verifies = options.rejectUnauthorized ?? true;
  const engine = context.createSession({
    servername,
    checkHost: verifies ? (options.servername ?? host) : false,
  });
  const session = new DtlsLayerSession<Server>(conn, flow, engine, {
    handshakeTimeout: options.timeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    keylog: keylogSink(options.keylog),
    receiveQueue: options.receiveQueue,
  });
  return new Promise<DtlsLayerSession<Server>>((resolve, reject) => {
    const onAbort = (): void => {
      session.failureCode ??= 'ABORT_ERR';
      session.destroy(new Error('Connect aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    session.once('up', () => {
      signal?.removeEventListener('abort', onAbort);
      if (signal) {
        const onLateAbort = (): void => session.destroy(new Error('Aborted'));
        signal.addEventListener('abort', onLateAbort, { once: true });
        session.once('close', () => signal.removeEventListener('abort', onLateAbort));
      }
      resolve(session);
    });
    session.once('close', () => {
      if (session.established) return;
      signal?.removeEventListener('abort', onAbort);
      const message = conn.error ?? 'DTLS handshake failed';
      conn.error = message;
      reject(
        new ConnectError(socketCode ?? session.failureCode ?? 'ERR_DTLS_HANDSHAKE', message, conn, {
          cause: engine.error ?? undefined,
        }),
      );
    });
    session.begin();
  });
}
