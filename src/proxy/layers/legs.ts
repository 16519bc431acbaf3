/**
 * What the layers of datagram and QUIC flows share about their legs: the server leg's UDP socket
 * dialed with the connect hooks, and the wait for either leg to end.
 */
import type { Server } from '../../connection/index.js';
import type { Session } from '../../transport/types.js';
import { connectUdp, type UdpSocketSession } from '../../transport/udp/connect.js';
import type { ProxyContext } from '../context.js';
import type { Flow } from '../hooks.js';
import type { FlowMode } from '../modes.js';

/**
 * The server leg's UDP socket to the mode's upstream, with the connect hooks (`ctx.openServer`)
 * and the link's impairment: null when vetoed or failed. `opened` gets it before `serverConnected` runs.
 */
export function openUdpLeg(
  ctx: ProxyContext,
  flow: Flow,
  mode: FlowMode,
  idleTimeout: number,
  opened: (udp: UdpSocketSession) => void,
): Promise<UdpSocketSession | null> {
  const conn: Server = flow.server;
  return ctx.openServer(
    flow,
    mode,
    () => connectUdp({ host: mode.host, port: mode.port, conn, ...(idleTimeout > 0 ? { idleTimeout } : {}) }),
    (udp) => {
      // what the proxy sends toward the server: its PROXY header, the link's impairment (`up`)
      ctx.serverSocket(udp.socket, flow.client);
      opened(udp);
    },
  );
}

/** A live leg as `untilLegEnds` watches it. */
type LiveLeg = Pick<Session, 'closed' | 'close' | 'once' | 'off'>;

/**
 * Resolves once either leg of a datagram or QUIC flow closes, or the proxy shuts down; `end`
 * runs once then (by default both legs are closed: close_notify, CONNECTION_CLOSE).
 */
export function untilLegEnds(
  ctx: ProxyContext,
  client: LiveLeg,
  server: LiveLeg,
  end: () => void = () => {
    void client.close();
    void server.close();
  },
): Promise<void> {
  return new Promise((resolve) => {
    const finish = (): void => {
      client.off('close', finish);
      server.off('close', finish);
      ctx.shutdown.removeEventListener('abort', finish);
      end();
      resolve();
    };
    if (client.closed || server.closed || ctx.shutdown.aborted) return finish();
    client.once('close', finish);
    server.once('close', finish);
    ctx.shutdown.addEventListener('abort', finish, { once: true });
  });
}
