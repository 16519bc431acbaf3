/**
 * Transparent TCP (Linux): what `net` cannot do, through the datagram socket addon. A listening
 * socket bound with IP_TRANSPARENT takes the connections a TPROXY rule steers to it (each
 * accepted socket's local address is then the address its client dialed); a connection a
 * REDIRECT (DNAT) rule brought here tells its original destination through SO_ORIGINAL_DST.
 */
import type { Socket } from 'node:net';
import type { Address } from '../../connection/index.js';
import { BindFlag } from '../datagram/layout.js';
import { loadDatagramAddon } from '../datagram/loader.js';
import { systemError } from '../datagram/socket.js';

interface TcpAddon {
  tcpListen(address: string, port: number, flags: number): number;
  originalDestination(fd: number): [string, number] | number;
}

function addon(what: string): TcpAddon {
  const loaded = loadDatagramAddon();
  if (!loaded.ok) throw new Error(`${what} needs the native socket addon (Linux): ${loaded.reason}`);
  return loaded.exports as TcpAddon;
}

/** How to bind a listening TCP socket that `net` cannot make. */
export interface TcpBindFlags {
  /** IP_TRANSPARENT (CAP_NET_ADMIN): take connections for any address a TPROXY rule steers here. */
  transparent?: boolean;
  /** SO_REUSEPORT: several listening sockets on one address (one per worker). */
  reusePort?: boolean;
}

/**
 * A bound TCP socket's fd for `net.Server.listen({ fd })` (which listens and owns it); throws a
 * Node-shaped system error (`bind EADDRINUSE 0.0.0.0:8080`, `bind EPERM`...) when it cannot.
 */
export function bindTcpFd(host: string, port: number, flags: TcpBindFlags): number {
  const fd = addon('a transparent or SO_REUSEPORT TCP listener').tcpListen(
    host,
    port,
    (flags.transparent ? BindFlag.transparent : 0) | (flags.reusePort ? BindFlag.reusePort : 0),
  );
  if (fd < 0) {
    const error = systemError(fd, 'bind', host, port);
    if (error.code === 'EPERM' && flags.transparent)
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
    const original = (loaded.exports as TcpAddon).originalDestination(fd);
    if (typeof original !== 'number') return original;
  }
  const { localAddress, localPort } = socket;
  return localAddress === undefined || localPort === undefined ? null : [localAddress, localPort];
}
