import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { type Address, Client, ConnectionState } from '../../connection/index.js';
import type { ListenOptions } from '../types.js';
import { bindTransparentTcpFd } from './transparent.js';

/** A bound `net` server (default 127.0.0.1, port 0, or the socket `fd`) and the address it got; rejects on bind errors. */
export async function bindTcpServer(
  options: ListenOptions,
): Promise<{ server: NetServer; address: Address }> {
  options.signal?.throwIfAborted();
  const server = createServer({
    allowHalfOpen: options.allowHalfOpen ?? false,
    noDelay: options.noDelay ?? true,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // net cannot set IP_TRANSPARENT before bind: the addon binds, net listens on the fd
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? 0;
    const where =
      options.fd !== undefined
        ? { fd: options.fd }
        : options.transparent
          ? { fd: bindTransparentTcpFd(host, port) }
          : { host, port };
    server.listen(where, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  if (bound === null || typeof bound === 'string') throw new Error('TCP listener has no address');
  return { server, address: [bound.address, bound.port] };
}

/**
 * The OPEN Client model of an accepted socket, from the real socket; null (and the socket
 * destroyed) if it was reset before we saw it.
 */
export function acceptedClient(socket: Socket, proxyMode = 'regular', tls = false): Client | null {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (
    remoteAddress === undefined ||
    remotePort === undefined ||
    localAddress === undefined ||
    localPort === undefined
  ) {
    socket.destroy();
    return null;
  }
  return new Client({
    peername: [remoteAddress, remotePort],
    sockname: [localAddress, localPort],
    state: ConnectionState.OPEN,
    transportProtocol: 'tcp',
    tls,
    proxyMode,
  });
}
