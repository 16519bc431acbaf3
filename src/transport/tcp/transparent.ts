/**
 * Transparent TCP (Linux): what `net` cannot do, through the native socket addon. A listening
 * socket bound with IP_TRANSPARENT takes the connections a TPROXY rule steers to it (each
 * accepted socket's local address is then the address its client dialed); a connection a
 * REDIRECT (DNAT) rule brought here tells its original destination through SO_ORIGINAL_DST.
 */
import { isIP, type Socket } from 'node:net';
import type { Address } from '../../connection/index.js';
import { BindFlag } from '../datagram/layout.js';
import { loadDatagramAddon } from '../datagram/loader.js';
import type { UdpAddon } from '../datagram/native-socket.js';
import { systemError } from '../datagram/socket.js';

/**
 * A TCP socket bound with IP_TRANSPARENT, its fd for `net.Server.listen({ fd })` (which listens
 * and owns it); throws a Node-shaped system error (`bind EPERM 0.0.0.0:8080`...) when it cannot.
 */
export function bindTransparentTcpFd(host: string, port: number): number {
  const loaded = loadDatagramAddon();
  if (!loaded.ok)
    throw new Error(`a transparent TCP listener needs the native socket addon (Linux): ${loaded.reason}`);
  const flags = BindFlag.transparent | BindFlag.reuseAddr;
  const fd = (loaded.exports as UdpAddon).bindFd(true, isIP(host) === 6 ? 6 : 4, host, port, flags);
  if (fd < 0) {
    const error = systemError(fd, 'bind', host, port);
    if (error.code === 'EPERM')
      error.message += ' (IP_TRANSPARENT needs CAP_NET_ADMIN: run as root or grant the capability)';
    throw error;
  }
  return fd;
}

/** The fd of a connected `net.Socket` (libuv's handle keeps it; undocumented but stable on Unix). */
function socketFd(socket: Socket): number | null {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  return typeof handle?.fd === 'number' && handle.fd >= 0 ? handle.fd : null;
}

/**
 * Where an accepted connection was going: SO_ORIGINAL_DST when a REDIRECT (DNAT) rule changed
 * its destination, else its local address (TPROXY keeps the destination as it was; so does
 * a system without the addon). Null when the socket is gone.
 */
export function originalDestination(socket: Socket): Address | null {
  const fd = socketFd(socket);
  const loaded = loadDatagramAddon();
  if (fd !== null && loaded.ok) {
    const original = (loaded.exports as UdpAddon).originalDestination(fd);
    if (typeof original !== 'number') return original;
  }
  const { localAddress, localPort } = socket;
  return localAddress === undefined || localPort === undefined ? null : [localAddress, localPort];
}
